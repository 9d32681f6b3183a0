import CShim
import CryoLinux
import CryoMonitor
import CryoRuntime
import FoundationEssentials
import Glibc

/// `cryo-monitor lazy-pages-watchdog RUNTIME-ROOT ID WORK-DIR -- CRIU-PATH ARGS…`
///
/// The parent of a post-copy target's `criu lazy-pages` (cryod starts it in a session of its
/// own, fd 3 the page stream and fd 4 the status socket, both handed on to criu). When criu
/// lazy-pages ends, the kernel serves every page it never fetched as zeros (facts §1.3), so a
/// non-zero exit means the restored container `ID` must die. cryod waits for the same status
/// and kills it too, but cryod may be dead or restarting then: this process does not depend on
/// it. It kills the container's whole cgroup (SIGKILL), records why
/// (`LazyPagesWatchdogReport`) and exits with criu's status, which cryod reads as criu's own.
/// criu dies with it (PDEATHSIG): a cancelled transfer never leaves a lazy-pages daemon behind.
///
/// Killing after criu's exit would come too late: the kernel wakes the tasks blocked on a
/// missing page as soon as the last reference to their userfaultfd closes. So the watchdog
/// holds copies of criu's userfaultfds (`pidfd_getfd`, refreshed every `pollMs`): when criu
/// dies, a fault on a missing page stays blocked until SIGKILL ends the task, and no task
/// ever reads a zero page in place of its memory. (A userfaultfd criu got less than
/// `pollMs` before it died — a fork in the container just then — is not covered.)
enum LazyPagesWatchdog {
    static let pollMs: Int32 = 20
    static func main(_ args: [String]) -> Never {
        guard args.count >= 7, args[5] == "--" else {
            fail("usage: cryo-monitor lazy-pages-watchdog RUNTIME-ROOT ID WORK-DIR -- CRIU-PATH ARGS...", code: 2)
        }
        let runtimeRoot = args[2], id = args[3], workDir = args[4]
        let criu = Array(args[6...])
        // Only cryod's SIGKILL (a cancelled transfer) ends this early.
        for s in [SIGHUP, SIGINT, SIGTERM, SIGPIPE] { signal(s, SIG_IGN) }
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        let child: SpawnedProcess
        do {
            child = try Spawn.spawn(path: criu[0], args: criu, env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                                    fds: [null, null, null, 3, 4], pdeathsig: SIGKILL)
        } catch {
            fail("lazy-pages watchdog: cannot start \(criu[0]): \(error)", code: 125)
        }
        // criu holds the page stream and the status socket alone now (EOF on status = it died).
        close(3); close(4); close(null)
        var held = HeldUserfaultfds(pid: child.pid, pidfd: child.pidfd)
        while true {
            var p = pollfd(fd: child.pidfd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, pollMs)
            if r > 0 { break }
            if r < 0 && errno != EINTR { break }
            held.refresh()
        }
        let status = (try? Spawn.wait(pid: child.pid)) ?? 255
        if status == 0 {
            // Every page is there: faults are ordinary again once these go.
            held.releaseAll()
            exit(0)
        }
        let (killed, why) = killContainer(runtimeRoot: runtimeRoot, id: id)
        held.releaseAll()
        let detail = why ?? lastError(workDir + "/lazy-pages.log")
        let report = LazyPagesWatchdogReport(lazyPagesStatus: status, killed: killed, at: rfc3339Now(), detail: detail)
        if let data = try? JSONEncoder().encode(report) {
            try? FS.atomicWrite(LazyPagesWatchdogReport.path(workDir: workDir), Array(data), mode: 0o600, durable: true)
        }
        exit(status)
    }

    /// SIGKILL to every process of the container until it is stopped. A restore still under
    /// way has no runtime state yet: it is waited for (its CRIU fails without the daemon, or
    /// restores tasks that this kills). Returns whether it killed anything, or why not.
    static func killContainer(runtimeRoot: String, id: String) -> (Bool, String?) {
        let rt = Runtime(root: runtimeRoot)
        let deadline = Monotonic.now().adding(seconds: 120)
        var killed = false
        while true {
            if let state = try? rt.state(id: id) {
                if state.status == "stopped" { return (killed, nil) }
                if (try? rt.kill(id: id, signal: SIGKILL, all: true)) != nil { killed = true }
            } else if killed {
                return (true, nil)   // its monitor saw it die and removed its state
            }
            if deadline.hasPassed {
                return (killed, killed ? "container \(id) still had processes 120 s after SIGKILL" : "no container \(id) to kill in \(runtimeRoot)")
            }
            usleep(5_000)
        }
    }

    /// Copies of the userfaultfds criu lazy-pages holds, kept in step with its fd table.
    struct HeldUserfaultfds {
        let pid: pid_t
        let pidfd: Int32
        /// criu's fd number → our copy.
        var copies: [Int32: Int32] = [:]

        mutating func refresh() {
            let me = getpid()
            var current: Set<Int32> = []
            for name in (try? FS.listDirectory("/proc/\(pid)/fd")) ?? [] {
                guard let fd = Int32(name), Self.isUserfaultfd("/proc/\(pid)/fd/\(name)") else { continue }
                current.insert(fd)
                if let mine = copies[fd] {
                    if cryo_kcmp_file(me, pid, mine, fd) == 0 { continue }
                    close(mine)
                    copies[fd] = nil
                }
                let mine = cryo_pidfd_getfd(pidfd, fd)
                if mine >= 0 { copies[fd] = mine }
            }
            // One criu closed (its task is gone, or fully served) is let go too.
            for (fd, mine) in copies where !current.contains(fd) {
                close(mine)
                copies[fd] = nil
            }
        }

        mutating func releaseAll() {
            for mine in copies.values { close(mine) }
            copies = [:]
        }

        static func isUserfaultfd(_ link: String) -> Bool {
            var buf = [CChar](repeating: 0, count: 64)
            let n = readlink(link, &buf, buf.count - 1)
            guard n > 0 else { return false }
            return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) == "anon_inode:[userfaultfd]"
        }
    }

    /// The last error line of criu's log (its "Error (…)" lines), for the report.
    static func lastError(_ log: String) -> String {
        let text = (try? FS.readString(log)) ?? ""
        let errors = text.split(separator: "\n").filter { $0.contains("Error") || $0.contains("FAILED") }
        return errors.last.map(String.init) ?? "criu lazy-pages left no error in \(log)"
    }

    static func fail(_ message: String, code: Int32) -> Never {
        let line = message + "\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
        exit(code)
    }
}
