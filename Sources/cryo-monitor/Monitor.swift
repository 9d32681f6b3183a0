import CShim
import CryoLinux
import CryoMonitor
import CryoRuntime
import FoundationEssentials
import Glibc

/// One attach/wait connection on the control socket.
final class Client {
    let fd: Int32
    var request: MonitorRequest?
    var inbox: [UInt8] = []          // request line, until parsed
    var outbox: [UInt8] = []         // frames not yet written
    var readOpen = true
    init(fd: Int32) { self.fd = fd }
    var wantsOutput: Bool { request?.op == .attach }
}

/// The monitor's poll loop, on one thread. Everything here runs after the container exists.
/// The only other thread a monitor may see is short-lived: at a restore's network unlock,
/// `NFTablesNetlink` closes its netlink socket on a detached thread (the close waits out an
/// RCU grace period). Every spawn goes through `cryo_spawn` (clone3 + exec, C only between
/// them), so no Swift runs between fork and exec either way.
final class Monitor {
    let config: MonitorConfig
    let runtime: Runtime
    var initPid: pid_t = 0
    var exitCode: Int32?
    var listenFD: Int32 = -1
    var signalFD: Int32 = -1
    var logFD: Int32 = -1
    /// Container output: (fd, stream). For a tty there is one: the pty master.
    var outputs: [(fd: Int32, kind: StreamKind)] = []
    var splitters: [StreamKind: LineSplitter] = [:]
    /// Where client stdin goes: a pipe's write end, or the pty master. -1: closed / none.
    var stdinFD: Int32 = -1
    var ptyMaster: Int32 = -1
    var stdinPending: [UInt8] = []
    var clients: [Client] = []

    init(config: MonitorConfig) {
        self.config = config
        self.runtime = Runtime(root: config.runtimeRoot)
    }

    // MARK: set-up

    /// Creates (or restores) the container with our pipes or a pty as its stdio.
    /// Returns the init pid.
    func setUp() throws -> pid_t {
        try Processes.setChildSubreaper()
        signal(SIGPIPE, SIG_IGN)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGCHLD)
        sigaddset(&set, SIGTERM)
        sigprocmask(SIG_BLOCK, &set, nil)
        signalFD = try sys(signalfd(-1, &set, Int32(SFD_CLOEXEC | SFD_NONBLOCK)), "signalfd")
        logFD = try sys(open(config.logPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640), "open", config.logPath)
        listenFD = try UnixListener(path: config.socketPath, backlog: 16).fd

        var consolePath: String?
        var consoleListener: UnixListener?
        var childEnds: [Int32] = []
        defer { for fd in childEnds { close(fd) } }
        let null = try sys(open("/dev/null", O_RDWR | O_CLOEXEC), "open", "/dev/null")
        defer { close(null) }
        var stdio: [Int32] = [null, null, null]
        if config.tty {
            consolePath = config.consoleSocketPath ?? config.socketPath + ".console"
            consoleListener = try UnixListener(path: consolePath!)
        } else {
            if config.openStdin {
                let (r, w) = try makePipe()
                stdio[0] = r; childEnds.append(r)
                stdinFD = w
                _ = fcntl(w, F_SETFL, fcntl(w, F_GETFL) | O_NONBLOCK)
            }
            for kind in [StreamKind.stdout, .stderr] {
                let (r, w) = try makePipe()
                stdio[Int(kind.rawValue)] = w; childEnds.append(w)
                _ = fcntl(r, F_SETFL, fcntl(r, F_GETFL) | O_NONBLOCK)
                outputs.append((r, kind))
            }
        }
        // The runtime hands our fds 0-2 to the container (create) or to CRIU (restore).
        for i: Int32 in 0...2 { try sys(dup2(stdio[Int(i)], i), "dup2", "stdio \(i)") }
        defer { for i: Int32 in 0...2 { _ = dup2(null, i) } }

        if let plan = config.restore {
            initPid = try runtime.restore(id: config.id, bundle: config.bundle, plan: plan,
                                          io: RestoreIO(consoleSocket: consolePath)).1
        } else {
            var o = CreateOptions(bundle: config.bundle)
            o.consoleSocket = consolePath
            initPid = try runtime.create(id: config.id, o).1.pid
        }
        if let l = consoleListener {
            defer { l.close() }
            ptyMaster = try l.receiveFD(timeoutMs: 10_000)
            _ = fcntl(ptyMaster, F_SETFL, fcntl(ptyMaster, F_GETFL) | O_NONBLOCK)
            outputs.append((ptyMaster, .stdout))
            if config.openStdin { stdinFD = ptyMaster }
        }
        return initPid
    }

    /// Cleans up after a failed set-up (the runtime already removed the container).
    func abandon() {
        unlink(config.socketPath)
    }

    func makePipe() throws -> (Int32, Int32) {
        var p: [Int32] = [0, 0]
        try sys(cryo_pipe2(&p, O_CLOEXEC), "pipe2")
        return (p[0], p[1])
    }

    // MARK: the loop

    func run() {
        _ = fcntl(listenFD, F_SETFL, fcntl(listenFD, F_GETFL) | O_NONBLOCK)
        var drainDeadline: Monotonic?
        while true {
            if exitCode != nil {
                if outputs.isEmpty { break }
                if let d = drainDeadline, d.hasPassed { break }
                if drainDeadline == nil { drainDeadline = Monotonic.now().adding(seconds: 2) }
            }
            var pfds: [pollfd] = [pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0),
                                  pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
            for o in outputs { pfds.append(pollfd(fd: o.fd, events: Int16(POLLIN), revents: 0)) }
            let clientBase = pfds.count
            for c in clients {
                var ev: Int32 = 0
                if c.readOpen { ev |= Int32(POLLIN) }
                if !c.outbox.isEmpty { ev |= Int32(POLLOUT) }
                pfds.append(pollfd(fd: c.fd, events: Int16(ev), revents: 0))
            }
            let stdinIndex = pfds.count
            if stdinFD >= 0 && !stdinPending.isEmpty {
                pfds.append(pollfd(fd: stdinFD, events: Int16(POLLOUT), revents: 0))
            }
            let timeout: Int32 = exitCode != nil ? 100 : -1
            let n = poll(&pfds, nfds_t(pfds.count), timeout)
            if n < 0 { if errno == EINTR { continue }; break }
            if pfds[0].revents != 0 { handleSignals() }
            if pfds[1].revents != 0 { acceptClients() }
            for (i, o) in outputs.enumerated().reversed() where pfds[2 + i].revents != 0 {
                readOutput(index: i, fd: o.fd, kind: o.kind)
            }
            let snapshot = clients
            for (i, c) in snapshot.enumerated() where clientBase + i < stdinIndex {
                let re = Int32(pfds[clientBase + i].revents)
                if re & Int32(POLLOUT) != 0 { flush(c) }
                if re & Int32(POLLIN | POLLHUP | POLLERR) != 0 { readClient(c) }
            }
            if stdinIndex < pfds.count && pfds[stdinIndex].revents != 0 { writeStdin() }
        }
        finish()
    }

    func handleSignals() {
        var info = signalfd_siginfo()
        var term = false
        while read(signalFD, &info, MemoryLayout<signalfd_siginfo>.size) > 0 {
            if info.ssi_signo == UInt32(SIGTERM) { term = true }
        }
        // SIGTERM to the monitor is passed on to the container, like a shim would.
        if term && exitCode == nil { Glibc.kill(initPid, SIGTERM) }
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { break }
            if pid == initPid { exitCode = Spawn.exitCode(fromWaitStatus: status) }
        }
    }

    func acceptClients() {
        while true {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 { return }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            clients.append(Client(fd: fd))
        }
    }

    func readOutput(index: Int, fd: Int32, kind: StreamKind) {
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buf, buf.count)
            if n > 0 {
                deliver(kind, buf[0..<n])
                continue
            }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { return }
            // EOF (or EIO on a pty whose last slave closed).
            if let rest = splitters[kind]?.flush() { writeLog(kind, rest) }
            outputs.remove(at: index)
            if fd != ptyMaster { close(fd) }
            return
        }
    }

    func deliver(_ kind: StreamKind, _ bytes: ArraySlice<UInt8>) {
        var s = splitters[kind] ?? LineSplitter()
        for line in s.feed(bytes) { writeLog(kind, line) }
        splitters[kind] = s
        let frame = StreamFrame.encode(kind, bytes)
        for c in clients where c.wantsOutput {
            let want = kind == .stderr ? (c.request?.stderr ?? true) : (c.request?.stdout ?? true)
            guard want else { continue }
            // A client that stops reading is dropped rather than stalling the container.
            if c.outbox.count > 8 << 20 { drop(c); continue }
            c.outbox += frame
            flush(c)
        }
    }

    func writeLog(_ kind: StreamKind, _ line: [UInt8]) {
        let entry = JSONLogLine(log: String(decoding: line, as: UTF8.self), stream: kind.name, time: rfc3339Now())
        _ = try? FS.writeAll(fd: logFD, entry.encoded(), what: "log")
    }

    func flush(_ c: Client) {
        while !c.outbox.isEmpty {
            let n = c.outbox.withUnsafeBytes { write(c.fd, $0.baseAddress, $0.count) }
            if n > 0 { c.outbox.removeFirst(n); continue }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { return }
            drop(c)
            return
        }
    }

    func drop(_ c: Client) {
        close(c.fd)
        clients.removeAll { $0 === c }
    }

    func readClient(_ c: Client) {
        var buf = [UInt8](repeating: 0, count: 65536)
        while c.readOpen {
            let n = read(c.fd, &buf, buf.count)
            if n < 0 && (errno == EAGAIN || errno == EINTR) { return }
            if n <= 0 {
                c.readOpen = false
                if c.request == nil { drop(c); return }
                // The attached client closed its stdin.
                if c.request?.stdin == true && config.stdinOnce && stdinFD >= 0 && stdinFD != ptyMaster {
                    closeStdin()
                }
                if c.request?.op != .attach { drop(c) }
                return
            }
            if c.request == nil {
                c.inbox += buf[0..<n]
                guard let nl = c.inbox.firstIndex(of: 0x0a) else {
                    if c.inbox.count > 4096 { drop(c) }
                    continue
                }
                let line = Array(c.inbox[..<nl])
                let rest = Array(c.inbox[(nl + 1)...])
                c.inbox = []
                guard let req = try? JSONDecoder().decode(MonitorRequest.self, from: Data(line)) else { drop(c); return }
                c.request = req
                handle(req, c)
                if c.request?.op == .attach && c.request?.stdin == true { forwardStdin(rest) }
            } else if c.request?.op == .attach && c.request?.stdin == true {
                forwardStdin(Array(buf[0..<n]))
            }
        }
    }

    func handle(_ req: MonitorRequest, _ c: Client) {
        switch req.op {
        case .attach:
            c.outbox += Array("ok\n".utf8)
            flush(c)
        case .resize:
            if ptyMaster >= 0 { _ = cryo_set_winsize(ptyMaster, req.height ?? 24, req.width ?? 80) }
            c.outbox += Array("ok\n".utf8)
            flush(c)
        case .wait:
            // Answered with the exit record and the close of the connection when the
            // container has exited.
            c.outbox += Array("ok\n".utf8)
            flush(c)
        }
    }

    func forwardStdin(_ bytes: [UInt8]) {
        guard stdinFD >= 0, !bytes.isEmpty else { return }
        stdinPending += bytes
        writeStdin()
    }

    func writeStdin() {
        while stdinFD >= 0 && !stdinPending.isEmpty {
            let n = stdinPending.withUnsafeBytes { write(stdinFD, $0.baseAddress, $0.count) }
            if n > 0 { stdinPending.removeFirst(n); continue }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { return }
            stdinPending = []
            closeStdin()
        }
    }

    func closeStdin() {
        if stdinFD >= 0 && stdinFD != ptyMaster { close(stdinFD) }
        stdinFD = -1
    }

    // MARK: exit

    func finish() {
        for (kind, var s) in splitters {
            if let rest = s.flush() { writeLog(kind, rest) }
        }

        var record = ExitRecord(exitCode: exitCode ?? 255, finishedAt: rfc3339Now())
        do {
            try FS.atomicWrite(config.exitPath, Array(try JSONEncoder().encode(record)), mode: 0o644, durable: false)
        } catch {
            // Not swallowed: cryod gets the record (and this failure) from the wait line
            // below, records the exit code and shows the failure in the container's Error.
            record.recordError = "writing the exit record \(config.exitPath) failed: \(error)"
            FS.writeStderr("cryo-monitor \(config.id): \(record.recordError!)")
        }
        if let line = try? JSONEncoder().encode(record) {
            for c in clients where c.request?.op == .wait { c.outbox += Array(line) + [0x0a] }
        }
        // The runtime's state and cgroups go first, so whoever learns of the exit can
        // remove or restart the container at once.
        try? runtime.delete(id: config.id, force: true)
        unlink(config.socketPath)
        // Attached clients get what is left, then EOF; waiters learn of the exit by EOF.
        for c in clients {
            _ = fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) & ~O_NONBLOCK)
            if !c.outbox.isEmpty { _ = try? FS.writeAll(fd: c.fd, c.outbox, what: "client") }
            shutdown(c.fd, Int32(SHUT_WR))
        }
        for c in clients { close(c.fd) }
    }
}
