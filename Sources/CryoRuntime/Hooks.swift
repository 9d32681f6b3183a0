import CShim
import CryoLinux
import CryoOCI
import FoundationEssentials
import Glibc

/// OCI hooks: each runs with the container state as JSON on stdin.
enum Hooks {
    static func run(_ hook: Spec.Hook, kind: String, state: HookState) throws {
        var p: [Int32] = [0, 0]
        try sys(cryo_pipe2(&p, O_CLOEXEC), "pipe2")
        let args = hook.args ?? [hook.path]
        let child: SpawnedProcess
        do {
            child = try Spawn.spawn(path: hook.path, args: args, env: hook.env ?? [], fds: [p[0], 2, 2])
        } catch {
            close(p[0]); close(p[1])
            throw CryoFailure(.internal, "\(kind) hook \(hook.path)", cause: error)
        }
        close(p[0])
        let json = Array((try? JSONEncoder().encode(state)) ?? Data())
        signal(SIGPIPE, SIG_IGN)
        try? FS.writeAll(fd: p[1], json, what: "hook stdin")
        close(p[1])
        if child.pidfd >= 0 { close(child.pidfd) }
        let deadline = hook.timeout.map { Double($0) }
        let start = Monotonic.now()
        while true {
            var status: Int32 = 0
            let r = waitpid(child.pid, &status, deadline == nil ? 0 : WNOHANG)
            if r == child.pid {
                let code = Spawn.exitCode(fromWaitStatus: status)
                if code != 0 { throw CryoFailure(.internal, "\(kind) hook \(hook.path) failed with exit status \(code)") }
                return
            }
            if r < 0 && errno != EINTR { throw SyscallError("waitpid", "hook \(hook.path)") }
            if let d = deadline, start.elapsedSeconds > d {
                kill(child.pid, SIGKILL)
                _ = waitpid(child.pid, &status, 0)
                throw CryoFailure(.internal, "\(kind) hook \(hook.path) timed out after \(Int(d)) s")
            }
            usleep(2000)
        }
    }

    static func runAll(_ hooks: [Spec.Hook]?, kind: String, state: HookState) throws {
        for h in hooks ?? [] { try run(h, kind: kind, state: state) }
    }
}
