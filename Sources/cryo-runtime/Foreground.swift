import CryoLinux
import CryoRuntime
import Glibc

/// `run` and `exec` without --detach: wait for the process, forwarding signals
/// to it, and return its exit code.
enum Foreground {
    static let forwarded: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH]

    static func run(runtime: Runtime, id: String, _ o: CreateOptions, detach: Bool, keep: Bool) throws -> Int32 {
        if !detach { try Processes.setChildSubreaper() }
        let (_, initProcess) = try runtime.create(id: id, o)
        do {
            try runtime.start(id: id)
        } catch {
            try? runtime.delete(id: id, force: true)
            throw error
        }
        if detach { return 0 }
        let code = try wait(pid: initProcess.pid)
        if !keep { try? runtime.delete(id: id, force: true) }
        return code
    }

    /// Waits for `pid` (our child), forwarding signals and reaping adopted orphans.
    static func wait(pid: pid_t) throws -> Int32 {
        var set = sigset_t()
        sigemptyset(&set)
        for s in forwarded + [SIGCHLD] { sigaddset(&set, s) }
        sigprocmask(SIG_BLOCK, &set, nil)
        while true {
            // Reap first: the child may have exited before we blocked signals.
            while true {
                var status: Int32 = 0
                let r = waitpid(-1, &status, WNOHANG)
                if r == pid { return Spawn.exitCode(fromWaitStatus: status) }
                if r <= 0 { break }
            }
            var info = siginfo_t()
            var timeout = timespec(tv_sec: 1, tv_nsec: 0)
            let sig = sigtimedwait(&set, &info, &timeout)
            if sig > 0 && sig != SIGCHLD { kill(pid, sig) }
            if sig < 0 && errno == EAGAIN, !Processes.isAlive(pid: pid, startTime: nil) {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid { return Spawn.exitCode(fromWaitStatus: status) }
            }
        }
    }
}

enum PSCommand {
    /// runc's table: `ps` output filtered to the container's pids.
    static func printTable(pids: [pid_t], psArgs: [String]) throws {
        let args = psArgs.isEmpty ? ["-ef"] : psArgs
        var p: [Int32] = [0, 0]
        guard pipe(&p) == 0 else { throw SyscallError("pipe") }
        let child = try Spawn.spawn(path: "/bin/ps", args: ["ps"] + args, env: ["PATH=/usr/bin:/bin", "LC_ALL=C"], fds: [0, p[1], 2])
        close(p[1])
        let out = String(decoding: try FS.readAll(fd: p[0], what: "ps output"), as: UTF8.self)
        close(p[0])
        _ = try Spawn.wait(pid: child.pid)
        let lines = out.split(separator: "\n")
        guard let header = lines.first else { return }
        let cols = header.split(separator: " ")
        guard let pidCol = cols.firstIndex(of: "PID") else { throw CryoFailure(.internal, "ps output has no PID column") }
        print(header)
        let want = Set(pids)
        for l in lines.dropFirst() {
            let f = l.split(separator: " ")
            if f.count > pidCol, let v = pid_t(f[pidCol]), want.contains(v) { print(l) }
        }
    }
}
