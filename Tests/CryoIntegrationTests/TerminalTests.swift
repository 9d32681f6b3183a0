// process.terminal = true through runc's console-socket protocol: the caller listens on a unix
// stream socket, passes its path as --console-socket, and the runtime connects and sends the pty
// master with SCM_RIGHTS (payload: the master's name). Covered: run -d, create + start,
// exec --tty, and checkpoint/restore of a terminal container (CRIU's orphan-pts-master
// notification: restore sends the new master to restore's --console-socket).
//
// The SCM_RIGHTS receive is done here in Swift (recvmsg + manual cmsghdr parsing), independent of
// the runtime's own C shim.

import Foundation
import CryoTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Console socket and pty master helpers

/// A listening unix stream socket: what a runc caller passes as --console-socket.
final class ConsoleSocketListener: Sendable {
    let path: String
    let fd: Int32

    init(path: String) throws {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            Glibc.close(fd)
            throw HarnessError("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
        }
        let r = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0, listen(fd, 8) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw HarnessError("bind/listen \(path): errno \(e)")
        }
    }

    /// Waits for the runtime to connect and returns the fds it sent (SCM_RIGHTS) and the payload.
    func receive(timeout: Double = 15) throws -> (fds: [Int32], payload: String) {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, Int32(timeout * 1000)) == 1 else {
            throw HarnessError("nobody connected to the console socket \(path) within \(timeout) s")
        }
        let conn = accept(fd, nil, nil)
        guard conn >= 0 else { throw HarnessError("accept: errno \(errno)") }
        _ = fcntl(conn, F_SETFD, FD_CLOEXEC)
        defer { Glibc.close(conn) }
        var cp = pollfd(fd: conn, events: Int16(POLLIN), revents: 0)
        guard poll(&cp, 1, Int32(timeout * 1000)) == 1 else {
            throw HarnessError("the runtime connected to \(path) but sent nothing within \(timeout) s")
        }
        return try receiveFileDescriptors(conn)
    }

    func close() {
        Glibc.close(fd)
        unlink(path)
    }
}

/// recvmsg with a control buffer; returns every fd of every SCM_RIGHTS message (close-on-exec).
func receiveFileDescriptors(_ sock: Int32) throws -> (fds: [Int32], payload: String) {
    let scmRights: Int32 = 1              // SCM_RIGHTS
    let msgCmsgCloexec: Int32 = 0x4000_0000  // MSG_CMSG_CLOEXEC
    let msgCtrunc: Int32 = 0x8            // MSG_CTRUNC
    let dataCap = 4096, controlCap = 512
    let data = UnsafeMutableRawPointer.allocate(byteCount: dataCap, alignment: 8)
    let control = UnsafeMutableRawPointer.allocate(byteCount: controlCap, alignment: MemoryLayout<cmsghdr>.alignment)
    defer { data.deallocate(); control.deallocate() }
    control.initializeMemory(as: UInt8.self, repeating: 0, count: controlCap)

    var iov = iovec(iov_base: data, iov_len: dataCap)
    var msg = msghdr()
    let n: Int = withUnsafeMutablePointer(to: &iov) { iovp in
        msg.msg_iov = iovp
        msg.msg_iovlen = 1
        msg.msg_control = control
        msg.msg_controllen = controlCap
        while true {
            let r = recvmsg(sock, &msg, msgCmsgCloexec)
            if r < 0 && errno == EINTR { continue }
            return r
        }
    }
    guard n >= 0 else { throw HarnessError("recvmsg: errno \(errno)") }

    // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } then the data,
    // at CMSG_ALIGN(sizeof(struct cmsghdr)); each header starts at CMSG_ALIGN of the previous end.
    func align(_ x: Int) -> Int { (x + MemoryLayout<Int>.size - 1) & ~(MemoryLayout<Int>.size - 1) }
    let header = align(MemoryLayout<cmsghdr>.size)
    var fds: [Int32] = []
    var off = 0
    while off + MemoryLayout<cmsghdr>.size <= Int(msg.msg_controllen) {
        let h = (control + off).load(as: cmsghdr.self)
        let len = Int(h.cmsg_len)
        guard len >= MemoryLayout<cmsghdr>.size, off + len <= Int(msg.msg_controllen) else { break }
        if h.cmsg_level == SOL_SOCKET && h.cmsg_type == scmRights {
            let count = (len - header) / MemoryLayout<Int32>.size
            for i in 0..<count {
                fds.append((control + off + header + i * MemoryLayout<Int32>.size).loadUnaligned(as: Int32.self))
            }
        }
        off += align(len)
    }
    if msg.msg_flags & msgCtrunc != 0 { throw HarnessError("recvmsg: control data truncated (fds lost)") }
    let payload = String(decoding: UnsafeRawBufferPointer(start: data, count: n), as: UTF8.self)
    return (fds, payload)
}

/// The master side of a pty: a thread collects what the container writes; `send` types into it.
/// The reader stops at hang-up (EIO: every slave fd closed) or when stopped.
// @unchecked: the mutable state is guarded by `lock` (NSLock, which the checker cannot see).
final class TerminalMaster: @unchecked Sendable {
    let fd: Int32
    private let lock = NSLock()
    private var data = Data()
    private var hungUp = false
    private var stopRequested = false
    private var finished = false

    init(fd: Int32) {
        self.fd = fd
        let t = Thread { [self] in self.readLoop() }
        t.name = "TerminalMaster"
        t.start()
    }

    private func readLoop() {
        var buf = [UInt8](repeating: 0, count: 8192)
        while !lock.withLock({ stopRequested }) {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, 50)
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { continue }
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                lock.withLock { data.append(contentsOf: buf[0..<n]) }
            } else if n < 0 && (errno == EINTR || errno == EAGAIN) {
                continue
            } else {
                lock.withLock { hungUp = true }
                break
            }
        }
        Glibc.close(fd)
        lock.withLock { finished = true }
    }

    /// Everything read so far, with the terminal's \r removed.
    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) }.replacingOccurrences(of: "\r", with: "") }
    var lines: [String] { text.split(separator: "\n").map { String($0) } }
    var isHungUp: Bool { lock.withLock { hungUp } }

    /// Types `s` into the terminal.
    @discardableResult
    func send(_ s: String) -> Bool {
        guard !lock.withLock({ finished }) else { return false }
        let bytes = Array(s.utf8)
        return bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
    }

    /// Polls until a whole output line equals `line` (the terminal's echo of typed input is a
    /// different line: "/ # echo …").
    @discardableResult
    func waitFor(line: String, timeout: Double = 15) -> Bool {
        waitUntil(timeout: timeout) { self.lines.contains { $0.trimmingCharacters(in: .whitespaces) == line } }
    }

    @discardableResult
    func waitForHangUp(timeout: Double = 15) -> Bool { waitUntil(timeout: timeout) { self.isHungUp } }

    func stop() {
        lock.withLock { stopRequested = true }
        waitUntil(timeout: 2) { self.lock.withLock { self.finished } }
    }
}

/// True when `fd` is a pty master (/dev/ptmx or a devpts ptmx: character device 5:2).
func isPTYMaster(_ fd: Int32) -> Bool {
    var st = stat()
    guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFCHR else { return false }
    let dev = UInt64(st.st_rdev)
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
    let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
    return major == 5 && minor == 2 && isatty(fd) == 1
}

extension TestEnv {
    /// A bundle whose process is an interactive `sh` on a terminal.
    func makeTerminalBundle(_ name: String, edit: (inout JSONObject) throws -> Void = { _ in }) throws -> TestBundle {
        try makeBundle(name, args: ["sh"]) { c in
            c[path: ["process", "terminal"]] = true
            try edit(&c)
        }
    }

    /// `run -d --console-socket` of a terminal bundle; returns the master the runtime sent.
    func runTerminal(_ bundle: TestBundle, id: String, socket: String) throws -> TerminalMaster {
        let listener = try ConsoleSocketListener(path: socket)
        defer { listener.close() }
        let r = try launchCryo(["run", "--detach", "--console-socket", socket, "--bundle", bundle.path, id]).result()
        guard r.succeeded else { throw HarnessError("run --detach of a terminal container: \(r)") }
        let (fds, _) = try listener.receive()
        guard fds.count == 1 else { for fd in fds { close(fd) }; throw HarnessError("expected one fd on the console socket, got \(fds)") }
        return TerminalMaster(fd: fds[0])
    }
}

extension CryoIntegration {
    @Suite("Terminal (console socket)")
    struct Terminal {
        @Test("run -d with process.terminal: the pty master arrives on --console-socket and drives the shell")
        func runDetachedTerminal() throws {
            try requireRuntime()
            try withEnv { env in
                let bundle = try env.makeTerminalBundle("tty")
                let id = env.newID("tty")
                let listener = try ConsoleSocketListener(path: env.path("console.sock"))
                defer { listener.close() }
                let r = try env.launchCryo(["run", "-d", "--console-socket", listener.path, "--bundle", bundle.path, id]).result()
                try #require(r.succeeded, "\(r)")
                #expect(try env.status(id) == "running")
                let (fds, payload) = try listener.receive()
                try #require(fds.count == 1, "one fd expected on the console socket, got \(fds) (payload \"\(payload)\")")
                #expect(isPTYMaster(fds[0]), "the fd sent is not a pty master")
                let tty = TerminalMaster(fd: fds[0])
                defer { tty.stop() }

                tty.send("echo hi-from-tty\n")
                #expect(tty.waitFor(line: "hi-from-tty"), "no echo output from the shell: \(tty.text)")
                tty.send("tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo stdio-is-tty; (: </dev/tty) && echo has-ctty\n")
                #expect(tty.waitFor(line: "/dev/pts/0"), "`tty` in the container: \(tty.text.suffix(300))")
                #expect(tty.waitFor(line: "stdio-is-tty"), "\(tty.text.suffix(300))")
                #expect(tty.waitFor(line: "has-ctty"), "the pty is not the shell's controlling terminal: \(tty.text.suffix(300))")
                // ^C reaches the foreground job through the line discipline (needs the ctty).
                tty.send("sleep 100\n")
                #expect(waitUntil(timeout: 5) { ((try? env.psPids(id)) ?? []).count >= 2 }, "`sleep 100` did not start")
                tty.send("\u{03}")
                tty.send("echo after-interrupt\n")
                #expect(tty.waitFor(line: "after-interrupt", timeout: 10), "^C did not interrupt `sleep 100`: \(tty.text.suffix(300))")
                // Exiting the shell stops the container; the master sees the hang-up.
                tty.send("exit 7\n")
                #expect(try env.waitForStatus(id, "stopped"), "container not stopped after `exit` in its shell")
                #expect(tty.waitForHangUp(), "the master did not hang up after the shell exited")
            }
        }

        @Test("create + start with process.terminal; without --console-socket create fails clearly")
        func createStartTerminal() throws {
            try requireRuntime()
            try withEnv { env in
                let bundle = try env.makeTerminalBundle("tty")
                let bad = env.newID("tty-nosock")
                let rb = try env.launchCryo(["create", "--bundle", bundle.path, bad]).result()
                #expect(rb.status != 0, "create of a terminal container without --console-socket succeeded: \(rb)")
                #expect(rb.stderr.contains("console-socket"), "the message should name --console-socket: \(rb)")
                #expect(try env.state(bad).0 == nil, "a failed create left a container")

                let id = env.newID("tty-cs")
                let listener = try ConsoleSocketListener(path: env.path("console.sock"))
                defer { listener.close() }
                let r = try env.launchCryo(["create", "--console-socket", listener.path, "--bundle", bundle.path, id]).result()
                try #require(r.succeeded, "\(r)")
                #expect(try env.status(id) == "created")
                let (fds, _) = try listener.receive()
                try #require(fds.count == 1, "\(fds)")
                let tty = TerminalMaster(fd: fds[0])
                defer { tty.stop() }
                try env.cryoOK(["start", id])
                #expect(try env.status(id) == "running")
                tty.send("echo started-$((40+2))\n")
                #expect(tty.waitFor(line: "started-42"), "\(tty.text)")
                #expect(!tty.isHungUp)
            }
        }

        @Test("exec --tty --console-socket gives the exec'd process a pty as its controlling terminal")
        func execTTY() throws {
            try requireRuntime()
            try withEnv { env in
                let bundle = try env.makeBundle(args: ["sleep", "1000"])
                let id = env.newID("exectty")
                _ = try env.startContainer(bundle, id: id)
                let listener = try ConsoleSocketListener(path: env.path("exec.sock"))
                defer { listener.close() }
                let ex = try env.launchCryo(["exec", "--tty", "--console-socket", listener.path, id,
                                             "sh", "-c", "tty; (: </dev/tty) && echo has-ctty; read x; echo got-$x; exit 3"])
                let (fds, _) = try listener.receive()
                try #require(fds.count == 1, "\(fds)")
                #expect(isPTYMaster(fds[0]))
                let tty = TerminalMaster(fd: fds[0])
                defer { tty.stop() }
                // Stop waiting early when the exec already failed.
                waitUntil(timeout: 10) { tty.lines.contains("has-ctty") || !ex.process.isRunning }
                if !ex.process.isRunning, let st = ex.waitForExit(timeout: 1), st != 0 {
                    Issue.record("exec --tty failed before running the command (exit \(st)): \(ex.stderr.text)\nterminal: \(tty.text)")
                    return
                }
                #expect(tty.waitFor(line: "has-ctty", timeout: 10), "exec --tty: \(tty.text)\nexec: \(ex.stderr.text)")
                #expect(tty.lines.contains { $0.hasPrefix("/dev/pts/") }, "`tty` output: \(tty.text)")
                tty.send("abc\n")
                #expect(tty.waitFor(line: "got-abc", timeout: 10), "\(tty.text)")
                let r = ex.result(timeout: 30)
                #expect(r.status == 3, "exec --tty should return the process's exit code: \(r)")
                #expect(try env.status(id) == "running")
                // A plain exec still works afterwards.
                let plain = try env.exec(id, ["echo", "plain"])
                #expect(plain.status == 0 && plain.stdout == "plain\n", "\(plain)")
            }
        }

        @Test("checkpoint/restore of a terminal container: the master sent to restore's --console-socket reaches the same shell")
        func checkpointRestoreTerminal() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let bundle = try env.makeTerminalBundle("tty")
                let id = env.newID("tty-cr")
                let tty = try env.runTerminal(bundle, id: id, socket: env.path("console.sock"))
                defer { tty.stop() }
                tty.send("X=42; echo set-$X\n")
                try #require(tty.waitFor(line: "set-42"), "\(tty.text)")

                let image = env.path("image")
                let cp = try env.checkpoint(id, image: image)
                try #require(cp.succeeded, "checkpoint of a terminal container: \(cp)")
                #expect(tty.waitForHangUp(), "the old master did not hang up: the checkpointed shell is still alive")

                let id2 = env.newID("tty-cr-r")
                let listener = try ConsoleSocketListener(path: env.path("restore.sock"))
                defer { listener.close() }
                let (_, rr) = try env.launchRestore(id2, image: image, bundle: bundle, extra: ["--console-socket", listener.path])
                try #require(rr.succeeded, "restore --console-socket of a terminal checkpoint: \(rr)")
                #expect(try env.status(id2) == "running")
                let (fds, _) = try listener.receive(timeout: 5)
                try #require(fds.count == 1, "restore sent \(fds) on its console socket")
                #expect(isPTYMaster(fds[0]), "the restored master is not a pty master")
                let tty2 = TerminalMaster(fd: fds[0])
                defer { tty2.stop() }
                tty2.send("echo after-$X\n")
                #expect(tty2.waitFor(line: "after-42"), "the restored shell (with its variable) is not on the new master: \(tty2.text)")
                tty2.send("(: </dev/tty) && echo has-ctty-after\n")
                #expect(tty2.waitFor(line: "has-ctty-after"), "\(tty2.text)")
                let e = try env.exec(id2, ["echo", "exec-after-restore"])
                #expect(e.status == 0 && e.stdout == "exec-after-restore\n", "\(e)")
                tty2.send("exit 5\n")
                #expect(try env.waitForStatus(id2, "stopped"), "restored container not stopped after `exit`")
            }
        }

        @Test("restore of a terminal checkpoint without --console-socket fails clearly and leaves nothing behind")
        func restoreTerminalWithoutConsoleSocket() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let bundle = try env.makeTerminalBundle("tty")
                let id = env.newID("tty-ns")
                let tty = try env.runTerminal(bundle, id: id, socket: env.path("console.sock"))
                defer { tty.stop() }
                tty.send("echo up\n")
                try #require(tty.waitFor(line: "up"))
                let image = env.path("image")
                try env.checkpointOK(id, image: image)
                let before = snapshotDirectory(image)

                let id2 = env.newID("tty-ns-r")
                let (r, res) = try env.launchRestore(id2, image: image, bundle: bundle)
                #expect(res.status != 0, "restore of a terminal checkpoint without --console-socket succeeded: \(res)")
                #expect(res.stderr.contains("console-socket"), "the message should say --console-socket is needed: \(res)")
                // Any log the message points to must exist.
                for part in res.stderr.components(separatedBy: "(full log: ").dropFirst() {
                    let path = String(part.prefix { $0 != ")" })
                    #expect(FileManager.default.fileExists(atPath: path), "the error names log \(path), which does not exist (restore-failed logs: \(((try? FileManager.default.contentsOfDirectory(atPath: env.stateRoot)) ?? []).filter { $0.hasSuffix(".log") }))")
                }
                #expect(try env.state(id2).0 == nil, "a failed restore left a container")
                #expect(CgroupCleaner.dirs("cryo/" + id2).isEmpty, "a failed restore left cgroups")
                #expect(r.stdout.waitForEOF(), "something still holds the failed restore's stdout")
                #expect(snapshotDirectory(image) == before, "the failed restore changed the image directory")

                // The same image restores fine once a console socket is given.
                let listener = try ConsoleSocketListener(path: env.path("restore.sock"))
                defer { listener.close() }
                let (_, ok) = try env.launchRestore(env.newID("tty-ns-r2"), image: image, bundle: bundle, extra: ["--console-socket", listener.path])
                #expect(ok.succeeded, "\(ok)")
                if ok.succeeded {
                    let (fds, _) = try listener.receive(timeout: 5)
                    let t = TerminalMaster(fd: fds.first ?? -1)
                    defer { t.stop() }
                    t.send("echo back\n")
                    #expect(t.waitFor(line: "back"), "\(t.text)")
                }
            }
        }
    }
}
