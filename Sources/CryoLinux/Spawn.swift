import CShim
import Glibc

/// A started child process.
public struct SpawnedProcess: Sendable {
    public let pid: pid_t
    public let pidfd: Int32
}

/// Starts processes through the C shim (clone3 + execve, no Swift in the child).
public enum Spawn {
    /// - Parameters:
    ///   - fds: child fd i becomes a copy of fds[i]; -1 leaves i closed.
    ///   - exeFD: execveat this fd instead of `path` (our own binary, opened before
    ///     any namespace change).
    ///   - cgroupFD: a cgroup-v2 directory the child is born in (CLONE_INTO_CGROUP); -1: the parent's.
    ///   - sessionKeyring: the child joins this named session keyring before exec (`SessionKeyring`).
    public static func spawn(
        path: String, exeFD: Int32 = -1, args: [String], env: [String],
        fds: [Int32] = [0, 1, 2], cloneFlags: UInt64 = 0, setsid: Bool = false,
        pdeathsig: Int32 = 0, cwd: String? = nil, cgroupFD: Int32 = -1, sessionKeyring: String? = nil
    ) throws -> SpawnedProcess {
        let cArgs = args.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup($0) } + [nil]
        let cPath = strdup(path)
        let cCwd = cwd.map { strdup($0) }
        let cKeyring = sessionKeyring.map { strdup($0) }
        defer {
            if let k = cKeyring { free(k) }
            for a in cArgs { free(a) }
            for e in cEnv { free(e) }
            free(cPath)
            if let c = cCwd { free(c) }
        }
        var pid: pid_t = 0
        var pidfd: Int32 = -1
        var step: UnsafePointer<CChar>? = nil
        let rc = cArgs.withUnsafeBufferPointer { argv in
            cEnv.withUnsafeBufferPointer { envp in
                fds.withUnsafeBufferPointer { fdp in
                    var attr = cryo_spawn_attr()
                    attr.path = UnsafePointer(cPath)
                    attr.exe_fd = exeFD
                    attr.argv = UnsafePointer(argv.baseAddress)
                    attr.envp = UnsafePointer(envp.baseAddress)
                    attr.clone_flags = cloneFlags
                    attr.fds = fdp.baseAddress
                    attr.nfds = Int32(fds.count)
                    attr.setsid = setsid ? 1 : 0
                    attr.pdeathsig = pdeathsig
                    attr.cwd = cCwd.map { UnsafePointer($0) } ?? nil
                    attr.into_cgroup = cgroupFD >= 0 ? 1 : 0
                    attr.cgroup_fd = cgroupFD
                    attr.session_keyring = cKeyring.map { UnsafePointer($0) } ?? nil
                    return cryo_spawn(&attr, &pid, &pidfd, &step)
                }
            }
        }
        if rc != 0 {
            let what = step.map { String(cString: $0) } ?? "spawn"
            throw SyscallError("spawn \(args.first ?? path): \(what)", path)
        }
        return SpawnedProcess(pid: pid, pidfd: pidfd)
    }

    /// Waits for a child and returns its exit code (128+signal when killed).
    public static func wait(pid: pid_t) throws -> Int32 {
        var status: Int32 = 0
        let r = retryingEINTR { waitpid(pid, &status, 0) }
        if r < 0 { throw SyscallError("waitpid", "pid \(pid)") }
        return exitCode(fromWaitStatus: status)
    }

    public static func exitCode(fromWaitStatus status: Int32) -> Int32 {
        let sig = status & 0x7f
        if sig == 0 { return (status >> 8) & 0xff }
        return 128 + sig
    }

    /// Our own executable, opened CRYO_O_PATH so it can be exec'd after namespace changes.
    public static func openSelfExe() throws -> Int32 {
        try sys(open("/proc/self/exe", CRYO_O_PATH | O_CLOEXEC), "open", "/proc/self/exe")
    }
}
