import FoundationEssentials

/// The flags `run` and `create` share, as the user typed them (docker's names).
public struct ContainerOptions: Sendable, Equatable {
    public var image = ""
    public var command: [String] = []
    public var name: String?
    public var detach = false
    public var interactive = false
    public var tty = false
    public var autoRemove = false
    public var env: [String] = []
    public var workdir: String?
    /// nil: flag not given; "": given empty (resets the image's entrypoint).
    public var entrypoint: String?
    public var volumes: [String] = []
    /// `--mount` flags as typed (MountBody.parse).
    public var mounts: [String] = []
    public var memory: String?
    public var cpus: String?
    public var pidsLimit: Int64?
    public var hostname: String?
    public var network: String?
    /// `--ip`: the container's address on its (user-defined) network.
    public var ip: String?
    /// `--mac-address`: the endpoint's MAC (kept across restores and migrations).
    public var macAddress: String?
    /// `-p/--publish`, `-P/--publish-all`, `--expose`, as typed.
    public var publish: [String] = []
    public var publishAll = false
    public var expose: [String] = []
    public var user: String?
    /// The local terminal's size (`-t` with a terminal on stdin), as [height, width].
    public var consoleSize: [Int]?
    /// True for `run` (StdinOnce and the Attach* flags follow the attach), false for `create`.
    public var isRun = true
    /// Confinement: `--cap-add/--cap-drop`, `--security-opt`, `--device`, `--privileged`,
    /// and the namespace modes `--pid`, `--ipc`, `--uts`, `--cgroupns`, `--userns`.
    public var capAdd: [String] = []
    public var capDrop: [String] = []
    public var securityOpt: [String] = []
    public var devices: [String] = []
    public var privileged = false
    public var pid = ""
    public var ipc = ""
    public var uts = ""
    public var cgroupns = ""
    public var userns = ""
    /// `--init`: cryod runs its small init as PID 1 (reaps zombies, forwards signals).
    public var initProcess = false
    /// `--restart`: NAME[:MAX-RETRIES] (nil: not given, "no").
    public var restart: String?
    /// `--health-*`, `--no-healthcheck`.
    public var health = HealthFlags()

    public init() {}
}

/// Body of POST /containers/create: Config's fields at top level, plus HostConfig, in
/// the shape docker's CLI sends (docker-api-subset.md §6).
public struct CreateBody: Codable, Sendable, Equatable {
    public var Hostname: String
    public var Domainname: String
    public var User: String
    public var AttachStdin: Bool
    public var AttachStdout: Bool
    public var AttachStderr: Bool
    public var Tty: Bool
    public var OpenStdin: Bool
    public var StdinOnce: Bool
    public var Env: [String]?
    public var Cmd: [String]?
    public var Image: String
    public var WorkingDir: String
    public var Entrypoint: [String]?
    public var Labels: [String: String]
    /// {"80/tcp": {}} for every `-p` and `--expose` port (docker's CLI does the same).
    public var ExposedPorts: [String: [String: String]]?
    /// `-v /path`: an anonymous volume at /path.
    public var Volumes: [String: [String: String]]?
    public var Healthcheck: HealthcheckBody?
    public var HostConfig: Host
    public var NetworkingConfig: Networking?

    /// `--ip` travels as EndpointsConfig.<network>.IPAMConfig.IPv4Address.
    public struct Networking: Codable, Sendable, Equatable {
        public struct Endpoint: Codable, Sendable, Equatable {
            public struct IPAM: Codable, Sendable, Equatable { public var IPv4Address: String }
            public var IPAMConfig: IPAM?
            /// `--mac-address`, as the docker CLI sends it to API 1.44 and later.
            public var MacAddress: String?
        }
        public var EndpointsConfig: [String: Endpoint]
    }

    public struct Host: Codable, Sendable, Equatable {
        public var Binds: [String]?
        public var Mounts: [MountBody]?
        public var AutoRemove: Bool
        public var NetworkMode: String
        public var Memory: Int64
        public var NanoCpus: Int64
        public var PidsLimit: Int64?
        public var RestartPolicy: RestartPolicyBody
        public var LogConfig: LogConfigBody
        public var ConsoleSize: [Int]
        public var PortBindings: [String: [PortBindingBody]]?
        public var PublishAllPorts: Bool
        public var CapAdd: [String]?
        public var CapDrop: [String]?
        public var SecurityOpt: [String]?
        public var MaskedPaths: [String]?
        public var ReadonlyPaths: [String]?
        public var Devices: [DeviceBody]?
        public var Privileged: Bool
        public var PidMode: String
        public var IpcMode: String
        public var UTSMode: String
        public var CgroupnsMode: String
        public var UsernsMode: String
        /// `--init`; nil (absent, as the docker CLI sends it) when the flag is not given.
        public var Init: Bool?
    }

    public struct DeviceBody: Codable, Sendable, Equatable {
        public var PathOnHost: String
        public var PathInContainer: String
        public var CgroupPermissions: String
    }

    public struct PortBindingBody: Codable, Sendable, Equatable {
        public var HostIp: String
        public var HostPort: String
    }

    public struct LogConfigBody: Codable, Sendable, Equatable {
        public var `Type`: String
        public var Config: [String: String]
    }

    /// Maps the flags to the body; `environment` resolves `-e NAME` (no `=`) from the
    /// local environment as docker does (unset names are left out).
    public static func build(_ o: ContainerOptions, environment: [String: String] = [:],
                             readFile: (String) throws -> String = SecurityFlags.readWholeFile) throws -> CreateBody {
        guard !o.image.isEmpty else { throw ClientError.usage("an image is required") }
        var env: [String] = []
        for e in o.env {
            if e.contains("=") {
                if e.hasPrefix("=") { throw ClientError.usage("invalid environment variable: \(e)") }
                env.append(e)
            } else if let v = environment[e] {
                env.append("\(e)=\(v)")
            }
        }
        let entrypoint: [String]? = o.entrypoint.map { $0.isEmpty ? [""] : [$0] }
        var binds: [String] = []
        var anonymous: [String: [String: String]] = [:]
        for v in o.volumes {
            let parts = v.split(separator: ":", omittingEmptySubsequences: false)
            // `-v /path`: an anonymous volume, as docker's CLI sends it (Config.Volumes).
            if parts.count == 1 && v.hasPrefix("/") {
                anonymous[v] = [:]
                continue
            }
            binds.append(v)
            guard parts.count >= 2, parts.count <= 3, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ClientError.usage("invalid volume specification: '\(v)': use SOURCE:DESTINATION[:OPTIONS]")
            }
            guard parts[1].hasPrefix("/") else {
                throw ClientError.usage("invalid volume specification: '\(v)': mount path must be absolute")
            }
        }
        var exposed: [String: [String: String]] = [:]
        var bindings: [String: [PortBindingBody]] = [:]
        for raw in o.publish {
            let p = try PortSpec.parse(raw)
            exposed[p.key] = [:]
            bindings[p.key, default: []].append(PortBindingBody(HostIp: p.hostIP, HostPort: p.hostPort))
        }
        for raw in o.expose { exposed[try PortSpec.parseExposed(raw)] = [:] }
        let mode = o.network.flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        var networking: Networking?
        if let ip = o.ip, !ip.isEmpty {
            guard PortSpec.isIPv4(ip) else { throw ClientError.usage("invalid argument \"\(ip)\" for \"--ip\" flag: invalid IPv4 address") }
            networking = Networking(EndpointsConfig: [mode: .init(IPAMConfig: .init(IPv4Address: ip))])
        }
        if let mac = o.macAddress, !mac.isEmpty {
            var n = networking ?? Networking(EndpointsConfig: [mode: .init()])
            n.EndpointsConfig[mode, default: .init()].MacAddress = mac
            networking = n
        }
        let memory = try o.memory.map(parseBytes) ?? 0
        let nanoCpus = try o.cpus.map(parseCPUs) ?? 0
        // docker run: without -d, stdout and stderr are attached (and stdin with -i);
        // with -d nothing is. StdinOnce only when stdin is attached.
        let attached = !(o.isRun && o.detach)
        let attachStdin = attached && o.interactive
        let caps = SecurityFlags.capabilities(add: o.capAdd, drop: o.capDrop)
        let security = try SecurityFlags.securityOptions(o.securityOpt, readFile: readFile)
        let devices = try o.devices.map(SecurityFlags.device)
        if !o.cgroupns.isEmpty && o.cgroupns != "host" && o.cgroupns != "private" {
            throw ClientError.usage("invalid argument \"\(o.cgroupns)\" for \"--cgroupns\" flag: want \"host\" or \"private\"")
        }
        var host = Host(
            Binds: binds.isEmpty ? nil : binds, Mounts: o.mounts.isEmpty ? nil : try o.mounts.map(MountBody.parse),
            AutoRemove: o.autoRemove,
            NetworkMode: mode,
            Memory: memory, NanoCpus: nanoCpus, PidsLimit: o.pidsLimit,
            RestartPolicy: try o.restart.map(RestartPolicyBody.parse) ?? RestartPolicyBody(), LogConfig: LogConfigBody(Type: "", Config: [:]),
            ConsoleSize: o.consoleSize ?? [0, 0],
            PortBindings: bindings.isEmpty ? nil : bindings, PublishAllPorts: o.publishAll,
            CapAdd: caps.add, CapDrop: caps.drop, SecurityOpt: security.options,
            Devices: devices.isEmpty ? nil : devices, Privileged: o.privileged,
            PidMode: o.pid, IpcMode: o.ipc, UTSMode: o.uts, CgroupnsMode: o.cgroupns, UsernsMode: o.userns)
        host.MaskedPaths = security.maskedPaths
        if o.initProcess { host.Init = true }
        host.ReadonlyPaths = security.readonlyPaths
        return CreateBody(
            Hostname: o.hostname ?? "", Domainname: "", User: o.user ?? "",
            AttachStdin: attachStdin, AttachStdout: attached, AttachStderr: attached,
            Tty: o.tty, OpenStdin: o.interactive, StdinOnce: o.isRun && attachStdin,
            Env: env.isEmpty ? nil : env, Cmd: o.command.isEmpty ? nil : o.command, Image: o.image,
            WorkingDir: o.workdir ?? "", Entrypoint: entrypoint, Labels: [:],
            ExposedPorts: exposed.isEmpty ? nil : exposed,
            Volumes: anonymous.isEmpty ? nil : anonymous,
            Healthcheck: try o.health.body(),
            HostConfig: host,
            NetworkingConfig: networking)
    }

    public func encoded() throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try e.encode(self))
    }
}

/// docker's RAMInBytes: "64m", "1.5g", "512k", "100" (bytes), "1gb"; binary units.
public func parseBytes(_ s: String) throws -> Int64 {
    var t = s.lowercased().trimmingSpaces
    if t.hasSuffix("b") && t.count > 1, let prev = t.dropLast().last, "kmgtp".contains(prev) { t.removeLast() }
    var mult: Double = 1
    if let last = t.last, let i = "bkmgtp".firstIndex(of: last) {
        let exp = "bkmgtp".distance(from: "bkmgtp".startIndex, to: i)
        mult = pow1024(exp)
        t.removeLast()
    }
    guard !t.isEmpty, let v = Double(t), v >= 0, v.isFinite else {
        throw ClientError.usage("invalid size: '\(s)'")
    }
    let bytes = v * mult
    guard bytes < 9.2e18 else { throw ClientError.usage("invalid size: '\(s)': too large") }
    return Int64(bytes)
}

func pow1024(_ n: Int) -> Double {
    var r = 1.0
    for _ in 0..<n { r *= 1024 }
    return r
}

/// docker's --cpus: a decimal number of CPUs → NanoCpus (1.5 → 1_500_000_000).
public func parseCPUs(_ s: String) throws -> Int64 {
    let t = s.trimmingSpaces
    let parts = t.split(separator: ".", omittingEmptySubsequences: false)
    guard !t.isEmpty, parts.count <= 2, parts.allSatisfy({ $0.allSatisfy(\.isASCIIDigit) }),
          !(parts.count == 2 && parts[0].isEmpty && parts[1].isEmpty) else {
        throw ClientError.usage("invalid argument \"\(s)\" for \"--cpus\" flag: failed to parse \(s) as a rational number")
    }
    let whole = Int64(parts[0].isEmpty ? "0" : String(parts[0])) ?? 0
    var frac: Int64 = 0
    if parts.count == 2 {
        let digits = String(parts[1])
        guard digits.count <= 9 else { throw ClientError.usage("value is too precise: \(s)") }
        frac = (Int64(digits.isEmpty ? "0" : digits) ?? 0) * Int64(pow10(9 - digits.count))
    }
    return whole * 1_000_000_000 + frac
}

func pow10(_ n: Int) -> Int { var r = 1; for _ in 0..<n { r *= 10 }; return r }

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

/// Bodies of the other requests the CLI sends.
public struct ExecCreateBody: Codable, Sendable, Equatable {
    public var User: String
    public var Privileged: Bool
    public var Tty: Bool
    public var AttachStdin: Bool
    public var AttachStderr: Bool
    public var AttachStdout: Bool
    public var Detach: Bool
    public var DetachKeys: String
    public var Env: [String]?
    public var WorkingDir: String
    public var Cmd: [String]
    public var ConsoleSize: [Int]?

    /// docker exec's mapping: -d attaches nothing; -i attaches stdin.
    public static func build(cmd: [String], interactive: Bool, tty: Bool, detach: Bool, env: [String], workdir: String?,
                             user: String?, consoleSize: [Int]?) -> ExecCreateBody {
        ExecCreateBody(User: user ?? "", Privileged: false, Tty: tty, AttachStdin: !detach && interactive,
                       AttachStderr: !detach, AttachStdout: !detach, Detach: detach, DetachKeys: "",
                       Env: env.isEmpty ? nil : env, WorkingDir: workdir ?? "", Cmd: cmd,
                       ConsoleSize: tty ? consoleSize : nil)
    }
}

public struct CheckpointCreateBody: Codable, Sendable, Equatable {
    public var CheckpointID: String
    public var CheckpointDir: String
    public var Exit: Bool

    public init(CheckpointID: String, CheckpointDir: String, Exit: Bool) {
        self.CheckpointID = CheckpointID
        self.CheckpointDir = CheckpointDir
        self.Exit = Exit
    }
}

public func encodeJSON<T: Encodable>(_ v: T) throws -> [UInt8] {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return Array(try e.encode(v))
}
