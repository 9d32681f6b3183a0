import CryoImages
import CryoLinux
import CryoOCI
import CryoRuntime
import Glibc

/// Turns a Docker create request plus its image's config into an OCI spec for the
/// runtime. Pure: the caller supplies the image's /etc/passwd and /etc/group text.
public enum SpecBuilder {
    public static let defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    /// Docker's default capability set.
    public static let defaultCapabilities = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ]

    /// The process's argv: Docker's entrypoint/cmd rules. An `--entrypoint` drops the
    /// image's Cmd; `[""]` as entrypoint means none.
    public static func command(request: ContainerConfig, image: ImageConfiguration.Config?) throws -> [String] {
        var entrypoint = image?.Entrypoint ?? []
        var cmd = image?.Cmd ?? []
        if let e = request.Entrypoint {
            entrypoint = e == [""] ? [] : e
            cmd = []
        }
        if let c = request.Cmd, !c.isEmpty { cmd = c }
        let argv = entrypoint + cmd
        guard let first = argv.first, !first.isEmpty else {
            throw EngineError.bad("no command specified: the image has no Cmd or Entrypoint and none was given")
        }
        return argv
    }

    /// Image env, then the request's (same key replaces), PATH if missing, HOSTNAME, TERM for a tty.
    public static func environment(request: [String]?, image: [String]?, hostname: String, tty: Bool) -> [String] {
        var keys: [String] = []
        var values: [String: String] = [:]
        func add(_ e: String) {
            let key = e.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? e
            if values[key] == nil { keys.append(key) }
            values[key] = e
        }
        add(defaultPath)
        add("HOSTNAME=\(hostname)")
        if tty { add("TERM=xterm") }
        for e in image ?? [] { add(e) }
        for e in request ?? [] { add(e) }
        return keys.compactMap { values[$0] }
    }

    /// `-v SRC:DST[:OPTS]` → a bind mount of a host path (volumes: ContainerMounts).
    public static func bindMount(_ bind: String) throws -> Spec.Mount {
        let parts = bind.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw EngineError.bad("invalid HostConfig.Binds entry \"\(bind)\": want SOURCE:DESTINATION[:OPTIONS]")
        }
        guard parts[0].hasPrefix("/") else {
            throw EngineError.bad("invalid HostConfig.Binds entry \"\(bind)\": source must be an absolute host path or a volume name")
        }
        guard parts[1].hasPrefix("/") else {
            throw EngineError.bad("invalid HostConfig.Binds entry \"\(bind)\": destination \"\(parts[1])\" must be an absolute path")
        }
        var options = ["rbind"]
        var propagation = "rprivate"
        for o in parts.count == 3 ? parts[2].split(separator: ",").map(String.init) : [] {
            switch o {
            case "ro", "rw": options.append(o)
            case "z", "Z", "nocopy": break
            case "private", "rprivate", "shared", "rshared", "slave", "rslave": propagation = o
            default: throw EngineError.bad("invalid HostConfig.Binds entry \"\(bind)\": unknown option \"\(o)\"")
            }
        }
        options.append(propagation)
        return Spec.Mount(destination: parts[1], type: "bind", source: parts[0], options: options)
    }

    /// `user`, `uid`, `user:group`, `uid:gid` against the image's passwd and group files.
    public static func user(_ spec: String?, passwd: String, group: String) throws -> Spec.User {
        let s = spec ?? ""
        if s.isEmpty { return Spec.User(uid: 0, gid: 0, additionalGids: groups(of: "root", gid: 0, group: group)) }
        // Never empty (a "User" of ":" split with empty parts dropped left nothing to index).
        let parts = s.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard !parts[0].isEmpty, parts.count == 1 || !parts[1].isEmpty else {
            throw EngineError.bad("invalid user \"\(s)\": want USER[:GROUP] or UID[:GID]")
        }
        let users = parse(passwd)
        var uid: UInt32
        var gid: UInt32 = 0
        var name: String?
        if let n = UInt32(parts[0]) {
            uid = n
            if let u = users.first(where: { UInt32($0[safe: 2] ?? "") == n }) {
                gid = UInt32(u[safe: 3] ?? "") ?? 0
                name = u[0]
            }
        } else if let u = users.first(where: { $0[0] == parts[0] }), let n = UInt32(u[safe: 2] ?? "") {
            uid = n
            gid = UInt32(u[safe: 3] ?? "") ?? 0
            name = u[0]
        } else {
            throw EngineError.bad("unable to find user \(parts[0]): no matching entries in passwd file")
        }
        if parts.count == 2 {
            if let n = UInt32(parts[1]) {
                gid = n
            } else if let g = parse(group).first(where: { $0[0] == parts[1] }), let n = UInt32(g[safe: 2] ?? "") {
                gid = n
            } else {
                throw EngineError.bad("unable to find group \(parts[1]): no matching entries in group file")
            }
        }
        let extra = name.map { groups(of: $0, gid: gid, group: group) } ?? []
        return Spec.User(uid: uid, gid: gid, additionalGids: extra.isEmpty ? nil : extra)
    }

    static func parse(_ text: String) -> [[String]] {
        text.split(separator: "\n").filter { !$0.hasPrefix("#") }
            .map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }
            .filter { $0.count >= 3 }
    }

    static func groups(of user: String, gid: UInt32, group: String) -> [UInt32] {
        parse(group).compactMap { g in
            guard let n = UInt32(g[2]), n != gid else { return nil }
            let members = (g[safe: 3] ?? "").split(separator: ",").map(String.init)
            return members.contains(user) ? n : nil
        }
    }

    public struct Input: Sendable {
        public var id: String
        public var config: ContainerConfig
        public var hostConfig: HostConfig
        public var image: ImageConfiguration.Config?
        public var passwd = ""
        public var group = ""
        public var cgroupParent = "/cryo"
        /// Join this network namespace file instead of making an anonymous one.
        public var networkNamespacePath: String?
        /// Directory holding the generated hostname, hosts and resolv.conf, bind-mounted
        /// (rw, like Docker) over /etc/hostname, /etc/hosts and /etc/resolv.conf.
        public var etcFilesDir: String?
        /// A host tmpfs to bind at /dev/shm in place of a tmpfs mounted inside the container.
        public var shmDir: String?
        /// A host tmpfs laid out by ContainerTmpfs: its `dev/` is bound at /dev, its `cgroup/`
        /// holds the v1 cgroup hierarchies, its empty `masked/` is bound read-only over the
        /// masked paths listed in `maskedDirectories` (those that are directories on this
        /// host; the others stay masked paths for the runtime).
        public var tmpfsDir: String?
        public var maskedDirectories: [String] = []
        /// The host path of cryo-init (static), bound at `initPath` for `--init`.
        public var initBinary: String?
        /// CPUs cryod may run on: the bound of NanoCpus (as dockerd's NumCPU).
        public var onlineCPUs = CreateValidation.onlineCPUs()
        /// Capabilities, seccomp, devices, shared namespaces; nil: `Confinement.from(hostConfig)`.
        public var confinement: Confinement?
        /// The host binds to mount (ContainerMounts.hostBinds); nil: HostConfig.Binds.
        public var hostBinds: [String]?
        /// Volumes: binds of their `_data` directories (ContainerMounts.specMount).
        public var volumeMounts: [Spec.Mount] = []
        public init(id: String, config: ContainerConfig, hostConfig: HostConfig, image: ImageConfiguration.Config?) {
            self.id = id
            self.config = config
            self.hostConfig = hostConfig
            self.image = image
        }
    }

    /// The request's hostname; else, like Docker, the host's own with `--network host` and
    /// the short id otherwise.
    public static func hostname(_ i: Input) -> String {
        if let h = i.config.Hostname, !h.isEmpty { return h }
        if i.hostConfig.NetworkMode == "host" {
            var buf = [CChar](repeating: 0, count: 256)
            if gethostname(&buf, buf.count - 1) == 0 {
                let h = String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !h.isEmpty { return h }
            }
        }
        return String(i.id.prefix(12))
    }

    /// Where `--init` puts cryo-init inside the container: Docker's path for its own init.
    public static let initPath = "/sbin/docker-init"

    public static func build(_ i: Input) throws -> Spec {
        let tty = i.config.Tty ?? false
        let host = hostname(i)
        var spec = Spec.defaultSpec(terminal: tty)
        let privileged = i.hostConfig.Privileged ?? false
        let caps = privileged ? Array(CryoLinux.Capabilities.names.prefix(CryoLinux.Capabilities.lastCap + 1)) : defaultCapabilities
        spec.process = Spec.Process(
            terminal: tty,
            user: try user(i.config.User ?? i.image?.User, passwd: i.passwd, group: i.group),
            args: try command(request: i.config, image: i.image),
            env: environment(request: i.config.Env, image: i.image?.Env, hostname: host, tty: tty),
            cwd: { let w = i.config.WorkingDir ?? i.image?.WorkingDir ?? ""; return w.isEmpty ? "/" : w }(),
            capabilities: Spec.Capabilities(bounding: caps, effective: caps, permitted: caps),
            noNewPrivileges: false)
        if i.hostConfig.Init == true {
            guard let binary = i.initBinary else {
                throw EngineError(.unsupported, "cryo cannot honour --init: its init binary (cryo-init) was not found next to cryod")
            }
            // As Docker's docker-init: a read-only bind of a static binary; the command becomes its arguments.
            let command = spec.process?.args ?? []
            spec.process?.args = [initPath, "--"] + command
            spec.mounts?.append(Spec.Mount(destination: initPath, type: "bind", source: binary,
                                           options: ["bind", "ro", "nosuid", "nodev", "rprivate"]))
        }
        try CreateValidation.commandSize(argv: spec.process?.args ?? [], env: spec.process?.env ?? [])
        if let cs = i.hostConfig.ConsoleSize, cs.count == 2, cs[0] > 0, cs[1] > 0 {
            spec.process?.consoleSize = Spec.Box(height: UInt(cs[0]), width: UInt(cs[1]))
        }
        guard spec.process?.cwd.hasPrefix("/") == true else {
            throw EngineError.bad("the working directory '\(spec.process?.cwd ?? "")' is invalid: it needs to be an absolute path")
        }
        spec.root = Spec.Root(path: "rootfs", readonly: i.hostConfig.ReadonlyRootfs ?? false)
        spec.hostname = host
        if let d = i.config.Domainname, !d.isEmpty { spec.domainname = d }
        // The container's own mounts (its /etc files, binds, volumes) go after the defaults,
        // shallowest first as in dockerd: a volume or bind at /etc is under its /etc/hosts, not
        // over it.
        var own: [Spec.Mount] = []
        if let dir = i.etcFilesDir {
            for f in ["hostname", "hosts", "resolv.conf"] {
                own.append(Spec.Mount(destination: "/etc/" + f, type: "bind", source: dir + "/" + f, options: ["rbind", "rprivate"]))
            }
        }
        if let shm = i.shmDir {
            let bind = Spec.Mount(destination: "/dev/shm", type: "bind", source: shm, options: ["rbind", "nosuid", "noexec", "nodev", "rprivate"])
            spec.mounts = spec.mounts?.map { $0.destination == "/dev/shm" ? bind : $0 }
        }
        if let dir = i.tmpfsDir {
            let dev = Spec.Mount(destination: "/dev", type: "bind", source: dir + "/dev", options: ["bind", "nosuid", "rprivate"])
            spec.mounts = spec.mounts?.map { $0.destination == "/dev" ? dev : $0 }
            spec.annotations = [RuntimeAnnotations.cgroupHolder: dir + "/cgroup"]
        }
        for b in i.hostBinds ?? i.hostConfig.Binds ?? [] { own.append(try bindMount(b)) }
        own.append(contentsOf: i.volumeMounts)
        spec.mounts?.append(contentsOf: Self.shallowestFirst(own))

        var resources = spec.linux?.resources ?? Spec.Resources()
        let limits = try CreateValidation.resources(i.hostConfig, cpus: i.onlineCPUs)
        resources.memory = limits.memory
        resources.cpu = limits.cpu
        resources.pids = limits.pids
        if privileged { resources.devices = [Spec.DeviceRule(allow: true, access: "rwm")] }
        spec.linux?.resources = resources
        spec.linux?.cgroupsPath = i.cgroupParent + "/" + i.id
        if i.hostConfig.NetworkMode == "host" {
            spec.linux?.namespaces?.removeAll { $0.type == "network" }
        } else if let path = i.networkNamespacePath {
            let namespaces = spec.linux?.namespaces?.map { $0.type == "network" ? Spec.Namespace(type: "network", path: path) : $0 }
            spec.linux?.namespaces = namespaces
        }
        // `--security-opt systempaths=unconfined` (the docker CLI sends both lists empty).
        if let m = i.hostConfig.MaskedPaths { spec.linux?.maskedPaths = m }
        if let r = i.hostConfig.ReadonlyPaths { spec.linux?.readonlyPaths = r }
        if privileged {
            spec.linux?.maskedPaths = []
            spec.linux?.readonlyPaths = []
        } else if let dir = i.tmpfsDir {
            // Masked directories: a read-only bind of one empty host directory (an external
            // mount for CRIU) instead of a read-only tmpfs each (archived by CRIU).
            let masked = spec.linux?.maskedPaths ?? []
            for p in masked where i.maskedDirectories.contains(p) {
                spec.mounts?.append(Spec.Mount(destination: p, type: "bind", source: dir + "/masked",
                                               options: ["bind", "ro", "nosuid", "nodev", "noexec", "rprivate"]))
            }
            spec.linux?.maskedPaths = masked.filter { !i.maskedDirectories.contains($0) }
        }
        try (i.confinement ?? Confinement.from(i.hostConfig)).apply(to: &spec)
        spec.annotations = (spec.annotations ?? [:]).merging(["org.cryo.container.name": i.id]) { _, new in new }
        return spec
    }

    /// Mounts ordered by the depth of their destination (stable: equal depths keep their order).
    static func shallowestFirst(_ mounts: [Spec.Mount]) -> [Spec.Mount] {
        func depth(_ m: Spec.Mount) -> Int { m.destination.split(separator: "/").count }
        return mounts.enumerated().sorted { (depth($0.element), $0.offset) < (depth($1.element), $1.offset) }.map(\.element)
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { i < count ? self[i] : nil }
}
