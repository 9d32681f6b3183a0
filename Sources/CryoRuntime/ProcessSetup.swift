import CShim
import CryoLinux
import CryoOCI
import Glibc

/// The last steps before execve, in the order the kernel requires:
/// rlimits → cwd → groups → bounding set → keepcaps → uid/gid → caps → ambient →
/// no_new_privs → seccomp → execve.
enum ProcessSetup {
    static let rlimitNames: [String: Int32] = [
        "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
        "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
        "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
        "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
    ]

    static func applyRlimits(_ limits: [Spec.Rlimit]) throws {
        for l in limits {
            guard let res = rlimitNames[l.type] else { throw CryoFailure(.invalidArgument, "unknown rlimit \"\(l.type)\"") }
            var r = rlimit(rlim_cur: rlim_t(l.soft), rlim_max: rlim_t(l.hard))
            if setrlimit(__rlimit_resource_t(UInt32(res)), &r) != 0 {
                throw SyscallError("setrlimit", "\(l.type) soft=\(l.soft) hard=\(l.hard)")
            }
        }
    }

    static func applyOOMScoreAdj(_ adj: Int?) throws {
        guard let adj else { return }
        try FS.write("/proc/self/oom_score_adj", "\(adj)")
    }

    /// Drops to the configured user and capabilities, loads seccomp (`program`: the profile
    /// already compiled, see SeccompCache), and execs.
    static func finalizeAndExec(_ p: Spec.Process, seccomp: Spec.Seccomp?, program: [UInt8]?, preserveFDs: Int32) throws -> Never {
        let env = p.env ?? []
        guard let args = p.args, !args.isEmpty else { throw CryoFailure(.invalidArgument, "process.args is empty") }
        try sys(chdir(p.cwd), "chdir", p.cwd)
        let path = try lookPath(args[0], env: env)

        let caps = p.capabilities
        let bounding = try Capabilities.numbers(caps?.bounding ?? [])
        let effective = try Capabilities.numbers(caps?.effective ?? [])
        let permitted = try Capabilities.numbers(caps?.permitted ?? [])
        let inheritable = try Capabilities.numbers(caps?.inheritable ?? [])
        let ambient = try Capabilities.numbers(caps?.ambient ?? [])

        // Without no_new_privs, loading seccomp needs CAP_SYS_ADMIN: do it while we still have it.
        let nnp = p.noNewPrivileges == true
        func loadSeccomp(_ s: Spec.Seccomp) throws {
            if let program { try SeccompFilter.load(program: program, flags: SeccompFilter.kernelFlags(s)) } else { try SeccompFilter.load(s) }
        }
        if let s = seccomp, !nnp { try loadSeccomp(s) }

        let groups = (p.user.additionalGids ?? []).map { gid_t($0) }
        try sys(setgroups(groups.count, groups), "setgroups", "\(groups)")
        try Capabilities.applyBounding(bounding)
        try sys(cryo_prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)")
        try sys(cryo_setresgid(p.user.gid, p.user.gid, p.user.gid), "setresgid", "\(p.user.gid)")
        try sys(cryo_setresuid(p.user.uid, p.user.uid, p.user.uid), "setresuid", "\(p.user.uid)")
        try sys(cryo_prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)")
        try Capabilities.set(effective: effective, permitted: permitted, inheritable: inheritable)
        if !ambient.isEmpty { try Capabilities.setAmbient(ambient.intersection(permitted).intersection(inheritable)) }
        if let m = p.user.umask { umask(mode_t(m)) }
        if nnp { try sys(cryo_prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)") }
        if let s = seccomp, nnp { try loadSeccomp(s) }

        // Our own descriptors must not leak into the container process.
        _ = cryo_close_range_cloexec(UInt32(3 + preserveFDs))
        let cArgs = args.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup($0) } + [nil]
        execve(path, cArgs, cEnv)
        throw CryoFailure(.commandNotRunnable, "exec: \"\(path)\"", cause: SyscallError("execve", path))
    }

    /// The checks runc makes before reporting a container created: the working
    /// directory exists and args[0] resolves to an executable.
    static func checkExecutable(_ p: Spec.Process) throws {
        guard let args = p.args, !args.isEmpty else { throw CryoFailure(.invalidArgument, "process.args is empty") }
        guard FS.isDirectory(p.cwd) else { throw CryoFailure(.invalidArgument, "process.cwd \(p.cwd) is not a directory in the container") }
        let saved = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { if saved >= 0 { _ = fchdir(saved); close(saved) } }
        try sys(chdir(p.cwd), "chdir", p.cwd)
        let path = try lookPath(args[0], env: p.env ?? [])
        guard access(path, X_OK) == 0 else {
            throw CryoFailure(.commandNotRunnable, "exec: \"\(args[0])\": stat \(path)", cause: CommandErrno(errno))
        }
    }

    /// PATH lookup in the container's own filesystem and environment.
    static func lookPath(_ name: String, env: [String]) throws -> String {
        if name.contains("/") { return name }
        let pathVar = env.first { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) }
            ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for dir in pathVar.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 && !FS.isDirectory(candidate) { return candidate }
        }
        throw CryoFailure(.commandNotRunnable, "exec: \"\(name)\"", cause: CommandErrno(ENOENT, text: "executable file not found in $PATH"))
    }
}
