import CryoLinux
import CryoOCI
import CryoRuntime
import Glibc

/// What confines a container, from its create request as Docker reads it: capabilities
/// (`--cap-add/--cap-drop`, `--privileged`), seccomp and no_new_privs (`--security-opt`),
/// devices (`--device`), masked paths, and the namespaces shared with the host (`--pid`,
/// `--ipc`, `--uts`, `--cgroupns`, `--userns`). Whatever cryo cannot honour is refused
/// with a 400 that says why, never accepted and ignored.
public struct Confinement: Sendable {
    public var capabilities: [String]
    /// nil: unconfined (`--privileged`, `seccomp=unconfined`).
    public var seccomp: Spec.Seccomp?
    public var noNewPrivileges = false
    public var devices: [Spec.Device] = []
    public var deviceRules: [Spec.DeviceRule] = []
    public var privileged = false
    public var pidHost = false
    public var ipcHost = false
    /// `--ipc none`: a private IPC namespace without /dev/shm.
    public var ipcNone = false
    public var utsHost = false
    public var cgroupnsHost = false

    /// The capability names the kernel knows, by OCI name.
    static var knownCapabilities: [String] { Array(Capabilities.names.prefix(Capabilities.lastCap + 1)) }

    /// The capabilities cryod itself may hand out: its bounding set (a sandbox may lack some,
    /// e.g. CAP_SYS_RESOURCE; asking capset for one of those fails).
    public static func hostBoundingSet() -> Set<String> {
        guard let status = try? FS.readString("/proc/self/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapBnd:") }),
              let field = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).last,
              let mask = UInt64(field, radix: 16) else {
            return Set(knownCapabilities)
        }
        return Set(knownCapabilities.enumerated().filter { mask & (UInt64(1) << UInt64($0.offset)) != 0 }.map(\.element))
    }

    public static func from(_ host: HostConfig, hostBounding: Set<String> = hostBoundingSet(),
                            cgroupLayout: CgroupLayout = .current()) throws -> Confinement {
        let privileged = host.Privileged ?? false
        let caps = try capabilities(add: host.CapAdd ?? [], drop: host.CapDrop ?? [], privileged: privileged, hostBounding: hostBounding)
        var c = Confinement(capabilities: caps)
        c.privileged = privileged
        try c.applyNamespaceModes(host)
        let opts = try SecurityOptions.parse(host.SecurityOpt ?? [])
        c.noNewPrivileges = opts.noNewPrivileges
        // Docker: a privileged container is never filtered, whatever the profile asked.
        if !privileged {
            switch opts.seccomp {
            case .unconfined: c.seccomp = nil
            case .builtin: c.seccomp = try DefaultSeccompProfile.profile.resolve(capabilities: caps)
            case .custom(let p): c.seccomp = try p.resolve(capabilities: caps)
            }
        }
        let hasDevicesController = cgroupLayout.v1.contains { $0.controllers.contains("devices") }
        if (!(host.Devices ?? []).isEmpty || !(host.DeviceCgroupRules ?? []).isEmpty) && !hasDevicesController {
            throw EngineError.bad("--device and --device-cgroup-rule need the cgroup v1 devices controller to allow the device; this host has none (cgroup v2 device rules need eBPF, which cryo does not do)")
        }
        if privileged {
            c.devices = DeviceNodes.hostDevices()
            c.deviceRules = [Spec.DeviceRule(allow: true, access: "rwm")]
        }
        for d in host.Devices ?? [] {
            let (nodes, rules) = try DeviceNodes.mapping(d)
            for n in nodes where !c.devices.contains(where: { $0.path == n.path }) { c.devices.append(n) }
            c.deviceRules += rules
        }
        for rule in host.DeviceCgroupRules ?? [] { c.deviceRules.append(try DeviceNodes.cgroupRule(rule)) }
        return c
    }

    /// Docker's rules: `--cap-add ALL` is every capability but the dropped ones; `--cap-drop
    /// ALL` keeps only the added ones; otherwise the defaults minus the dropped plus the
    /// added (an added one wins over the same dropped one). Names are case-insensitive,
    /// with or without CAP_.
    static func capabilities(add: [String], drop: [String], privileged: Bool, hostBounding: Set<String>) throws -> [String] {
        let known = knownCapabilities
        func normalise(_ list: [String], flag: String) throws -> [String] {
            try list.map { raw in
                let up = raw.uppercased()
                if up == "ALL" { return "ALL" }
                let name = up.hasPrefix("CAP_") ? up : "CAP_" + up
                guard known.contains(name) else { throw EngineError.bad("\(flag): unknown capability: \"\(raw)\"") }
                return name
            }
        }
        let added = try normalise(add, flag: "CapAdd")
        let dropped = try normalise(drop, flag: "CapDrop")
        // What the host cannot give is refused when asked for by name; `ALL` and
        // `--privileged` mean all that the host can give.
        for name in added where name != "ALL" && !hostBounding.contains(name) {
            throw EngineError.bad("CapAdd: \(name) cannot be granted: it is not in this host's capability bounding set (cryod does not hold it)")
        }
        var caps: [String]
        if privileged || added.contains("ALL") {
            caps = known.filter { hostBounding.contains($0) && (privileged || !dropped.contains($0)) }
        } else if dropped.contains("ALL") {
            caps = added
        } else {
            caps = SpecBuilder.defaultCapabilities.filter { !dropped.contains($0) && hostBounding.contains($0) } + added
        }
        var seen = Set<String>()
        return caps.filter { seen.insert($0).inserted }
    }

    mutating func applyNamespaceModes(_ host: HostConfig) throws {
        switch host.PidMode ?? "" {
        case "", "private": break
        case "host": pidHost = true
        case let m: throw EngineError.bad("PidMode \"\(m)\" is not supported: cryo offers \"host\" or a PID namespace of the container's own")
        }
        switch host.IpcMode ?? "" {
        case "", "private", "shareable": break
        case "host": ipcHost = true
        case "none": ipcNone = true
        case let m: throw EngineError.bad("IpcMode \"\(m)\" is not supported: cryo offers \"private\", \"shareable\", \"none\" or \"host\" (not joining another container's)")
        }
        switch host.UTSMode ?? "" {
        case "": break
        case "host": utsHost = true
        case let m: throw EngineError.bad("UTSMode \"\(m)\" is not supported: cryo offers \"host\" or a UTS namespace of the container's own")
        }
        switch host.CgroupnsMode ?? "" {
        case "", "private": break
        case "host": cgroupnsHost = true
        case let m: throw EngineError.bad("invalid CgroupnsMode \"\(m)\": want \"private\" or \"host\"")
        }
        switch host.UsernsMode ?? "" {
        case "", "host": break   // cryo never remaps users: every container is in the host's user namespace
        case let m: throw EngineError.bad("UsernsMode \"\(m)\" is not supported: cryo runs containers in the host's user namespace only (\"host\")")
        }
    }

    /// Puts all of it into the spec (after SpecBuilder made the rest).
    public func apply(to spec: inout Spec) {
        spec.process?.capabilities = Spec.Capabilities(bounding: capabilities, effective: capabilities, permitted: capabilities)
        spec.process?.noNewPrivileges = noNewPrivileges
        spec.linux?.seccomp = seccomp
        if !devices.isEmpty {
            let existing = spec.linux?.devices ?? []
            spec.linux?.devices = existing + devices
        }
        if !deviceRules.isEmpty {
            var resources = spec.linux?.resources ?? Spec.Resources()
            resources.devices = (resources.devices ?? []) + deviceRules
            spec.linux?.resources = resources
        }
        var drop: Set<String> = []
        if pidHost { drop.insert("pid") }
        if ipcHost { drop.insert("ipc") }
        if utsHost { drop.insert("uts") }
        if cgroupnsHost { drop.insert("cgroup") }
        spec.linux?.namespaces?.removeAll { drop.contains($0.type) }
        if utsHost { spec.hostname = nil; spec.domainname = nil }
        if ipcHost {
            // The host's IPC namespace and its /dev/shm, as Docker does.
            let shm = Spec.Mount(destination: "/dev/shm", type: "bind", source: "/dev/shm", options: ["rbind", "nosuid", "noexec", "nodev", "rprivate"])
            spec.mounts = spec.mounts?.map { $0.destination == "/dev/shm" ? shm : $0 }
        }
        if ipcNone { spec.mounts?.removeAll { $0.destination == "/dev/shm" } }
        if privileged {
            // Docker: /sys and the cgroup mount writable.
            spec.mounts = spec.mounts?.map { m in
                guard m.destination == "/sys" || m.destination == "/sys/fs/cgroup" else { return m }
                var m = m
                m.options = m.options?.filter { $0 != "ro" }
                return m
            }
        }
    }
}

/// `--security-opt` values, Docker's syntax (`key=value`, the older `key:value`).
struct SecurityOptions {
    enum SeccompChoice { case builtin, unconfined, custom(SeccompProfile) }
    var noNewPrivileges = false
    var seccomp = SeccompChoice.builtin

    static func parse(_ options: [String]) throws -> SecurityOptions {
        var o = SecurityOptions()
        for opt in options {
            if opt == "no-new-privileges" { o.noNewPrivileges = true; continue }
            if opt == "disable" { continue }   // the old spelling of label=disable
            let sep = opt.firstIndex(of: "=") ?? opt.firstIndex(of: ":")
            guard let sep else { throw EngineError.bad("invalid --security-opt \"\(opt)\": want KEY=VALUE") }
            let key = String(opt[..<sep])
            let value = String(opt[opt.index(after: sep)...])
            switch key {
            case "no-new-privileges":
                switch value.lowercased() {
                case "true", "1", "t": o.noNewPrivileges = true
                case "false", "0", "f": o.noNewPrivileges = false
                default: throw EngineError.bad("invalid --security-opt \"\(opt)\": no-new-privileges wants true or false")
                }
            case "seccomp":
                switch value {
                case "unconfined": o.seccomp = .unconfined
                case "builtin", "": o.seccomp = .builtin
                default:
                    guard value.hasPrefix("{") else {
                        throw EngineError.bad("invalid --security-opt seccomp=\(value): want unconfined, builtin or a profile's JSON (the docker CLI sends a file's content)")
                    }
                    o.seccomp = .custom(try SeccompProfile.decode(value))
                }
            case "apparmor":
                // cryo applies no AppArmor profile at all: "unconfined" is what it does.
                guard value == "unconfined" else {
                    throw EngineError.bad("--security-opt apparmor=\(value) is not supported: cryo applies no AppArmor profiles (only apparmor=unconfined)")
                }
            case "label":
                // Nor SELinux labels: "disable" is what it does.
                guard value == "disable" else {
                    throw EngineError.bad("--security-opt label=\(value) is not supported: cryo applies no SELinux labels (only label=disable)")
                }
            default:
                throw EngineError.bad("invalid --security-opt \"\(opt.count > 80 ? String(opt.prefix(80)) + "…" : opt)\": unknown option \"\(key)\"")
            }
        }
        return o
    }
}
