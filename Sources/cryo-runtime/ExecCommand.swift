import CryoLinux
import CryoOCI
import CryoRuntime
import FoundationEssentials

enum ExecCommand {
    /// The process to exec: --process FILE, or COMMAND with the flags applied
    /// on top of the container's own process (env, cwd, user, caps).
    static func process(from opts: ParsedOptions, runtime: Runtime, id: String) throws -> Spec.Process {
        if let path = opts.value("process") {
            do {
                return try JSONDecoder().decode(Spec.Process.self, from: Data(try FS.readBytes(path)))
            } catch let e as DecodingError {
                throw CryoFailure(.invalidArgument, "--process \(path): not a valid OCI process: \(e)")
            }
        }
        let args = Array(opts.positionals.dropFirst())
        guard !args.isEmpty else { throw CryoFailure(.invalidArgument, "exec needs a COMMAND or --process FILE") }
        let record = try runtime.store.load(id)
        var p = record.spec.process ?? Spec.Process()
        p.args = args
        p.terminal = opts.has("tty")
        p.env = (p.env ?? []) + opts.all("env")
        if let cwd = opts.value("cwd") { p.cwd = cwd }
        if let u = opts.value("user") {
            let parts = u.split(separator: ":")
            guard let uid = UInt32(parts[0]), parts.count == 1 || UInt32(parts[1]) != nil else {
                throw CryoFailure(.invalidArgument, "--user must be UID[:GID] (numbers), got \"\(u)\"")
            }
            p.user = Spec.User(uid: uid, gid: parts.count > 1 ? UInt32(parts[1])! : 0)
        }
        let gids = try opts.all("additional-gids").map { g -> UInt32 in
            guard let v = UInt32(g) else { throw CryoFailure(.invalidArgument, "--additional-gids must be a number, got \"\(g)\"") }
            return v
        }
        if !gids.isEmpty { p.user.additionalGids = gids }
        let caps = opts.all("cap")
        if !caps.isEmpty {
            var c = p.capabilities ?? Spec.Capabilities()
            c.bounding = (c.bounding ?? []) + caps
            c.effective = (c.effective ?? []) + caps
            c.permitted = (c.permitted ?? []) + caps
            p.capabilities = c
        }
        if opts.has("no-new-privs") { p.noNewPrivileges = true }
        return p
    }
}

enum Features {
    static let json = """
    {
      "ociVersionMin": "1.0.0",
      "ociVersionMax": "1.0.2",
      "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
      "mountOptions": ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand", "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime", "nosuid", "private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "slave", "strictatime", "suid", "sync", "unbindable"],
      "linux": {
        "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "uts"],
        "capabilities": [\(Capabilities.names.map { "\"\($0)\"" }.joined(separator: ", "))],
        "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false },
        "seccomp": { "enabled": true, "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"], "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"] },
        "apparmor": { "enabled": false },
        "selinux": { "enabled": false }
      },
      "annotations": { "org.criu.config": "", "io.github.cryo.checkpoint": "criu-rpc" }
    }
    """
}
