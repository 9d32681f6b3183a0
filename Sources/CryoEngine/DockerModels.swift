import CryoImages
import FoundationEssentials

// The Docker Engine API's JSON, as much of it as cryo serves. Field names are Docker's.
// Decoding is lenient (every field optional) because the docker CLI sends ~60 HostConfig
// keys and docker-py a handful; encoding always includes the objects the clients
// dereference (Config, State, HostConfig.LogConfig — see docker-api-subset.md §7).

public struct ContainerConfig: Codable, Sendable, Equatable {
    public var Hostname: String?
    public var Domainname: String?
    public var User: String?
    public var AttachStdin: Bool?
    public var AttachStdout: Bool?
    public var AttachStderr: Bool?
    public var Tty: Bool?
    public var OpenStdin: Bool?
    public var StdinOnce: Bool?
    public var Env: [String]?
    public var Cmd: [String]?
    public var Image: String?
    public var WorkingDir: String?
    public var Entrypoint: [String]?
    public var Labels: [String: String]?
    public var StopSignal: String?
    public var StopTimeout: Int?
    /// `--expose` (and the image's EXPOSE): {"80/tcp": {}}; `-P` publishes these.
    public var ExposedPorts: [String: EmptyObject]?
    /// `--mac-address` as API versions before 1.44 send it (newer ones: the endpoint's MacAddress).
    public var MacAddress: String?
    /// `-v /path` (an anonymous volume): {"/path": {}}.
    public var Volumes: [String: EmptyObject]?
    /// `--health-*` and `--no-healthcheck` (merged with the image's at create).
    public var Healthcheck: HealthcheckConfig?
    public init() {}
}

/// One `--mount` as the clients send it in HostConfig.Mounts.
public struct MountRequest: Codable, Sendable, Equatable {
    public var `Type`: String?
    public var Source: String?
    public var Target: String?
    public var ReadOnly: Bool?
    public var Consistency: String?
    public var BindOptions: BindOptions?
    public var VolumeOptions: VolumeOptions?
    public struct BindOptions: Codable, Sendable, Equatable {
        public var Propagation: String?
        public var NonRecursive: Bool?
        public var CreateMountpoint: Bool?
        public init() {}
    }
    public struct VolumeOptions: Codable, Sendable, Equatable {
        public var NoCopy: Bool?
        public var Labels: [String: String]?
        public var DriverConfig: DriverConfig?
        public var Subpath: String?
        public init() {}
    }
    public struct DriverConfig: Codable, Sendable, Equatable {
        public var Name: String?
        public var Options: [String: String]?
        public init() {}
    }
    public init() {}
}

public struct LogConfig: Codable, Sendable, Equatable {
    public var `Type`: String?
    public var Config: [String: String]?
    public init(type: String? = nil) { self.Type = type; self.Config = [:] }
}

public struct RestartPolicy: Codable, Sendable, Equatable {
    public var Name: String?
    public var MaximumRetryCount: Int?
    public init(name: String = "no") { self.Name = name; self.MaximumRetryCount = 0 }
}

public struct HostConfig: Codable, Sendable, Equatable {
    public var Binds: [String]?
    /// `--add-host NAME:IP` (see `ExtraHosts`).
    public var ExtraHosts: [String]?
    /// `--link NAME[:ALIAS]`: on a user-defined network the endpoint's links (`NetworkLinks`),
    /// as dockerd takes them; refused on cryo0 (no legacy links).
    public var Links: [String]?
    /// `--mount`: volumes and binds (tmpfs refused).
    public var Mounts: [MountRequest]?
    public var AutoRemove: Bool?
    public var NetworkMode: String?
    public var Memory: Int64?
    public var NanoCpus: Int64?
    public var CpuQuota: Int64?
    public var CpuPeriod: Int64?
    public var CpuShares: Int64?
    public var PidsLimit: Int64?
    public var Privileged: Bool?
    public var ReadonlyRootfs: Bool?
    public var LogConfig: LogConfig?
    public var RestartPolicy: RestartPolicy?
    public var ConsoleSize: [Int]?
    /// Bytes of the container's /dev/shm (0: Docker's default, 64 MiB).
    public var ShmSize: Int64?
    /// `-p`: {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}.
    public var PortBindings: [String: [PortBinding]?]?
    /// `-P`: every exposed port on a free host port.
    public var PublishAllPorts: Bool?
    // Confinement (see Confinement): capabilities, --security-opt, --device, namespaces.
    public var CapAdd: [String]?
    public var CapDrop: [String]?
    public var SecurityOpt: [String]?
    public var Devices: [DeviceMapping]?
    /// `--device-cgroup-rule 'c 1:3 rwm'`.
    public var DeviceCgroupRules: [String]?
    public var PidMode: String?
    public var IpcMode: String?
    public var UTSMode: String?
    public var CgroupnsMode: String?
    public var UsernsMode: String?
    /// `--security-opt systempaths=unconfined` arrives (from the docker CLI) as both empty.
    public var MaskedPaths: [String]?
    public var ReadonlyPaths: [String]?
    /// `--init`: cryo-init runs as PID 1 (reaps zombies, forwards signals) and execs the command.
    public var Init: Bool?
    public init() {}
}

/// `--device HOST[:CONTAINER][:PERMISSIONS]`.
public struct DeviceMapping: Codable, Sendable, Equatable {
    public var PathOnHost: String?
    public var PathInContainer: String?
    public var CgroupPermissions: String?
    public init(PathOnHost: String? = nil, PathInContainer: String? = nil, CgroupPermissions: String? = nil) {
        self.PathOnHost = PathOnHost
        self.PathInContainer = PathInContainer
        self.CgroupPermissions = CgroupPermissions
    }
}

public struct PortBinding: Codable, Sendable, Equatable {
    public var HostIp: String?
    public var HostPort: String?
    public init(HostIp: String? = nil, HostPort: String? = nil) {
        self.HostIp = HostIp
        self.HostPort = HostPort
    }
}

/// `NetworkingConfig` of a create request: `--ip` arrives as
/// EndpointsConfig.<network>.IPAMConfig.IPv4Address.
public struct NetworkingConfig: Codable, Sendable, Equatable {
    public struct EndpointIPAMConfig: Codable, Sendable, Equatable {
        public var IPv4Address: String?
        public init(IPv4Address: String? = nil) { self.IPv4Address = IPv4Address }
    }
    public struct EndpointSettings: Codable, Sendable, Equatable {
        public var IPAMConfig: EndpointIPAMConfig?
        /// `--mac-address` (API 1.44 and later).
        public var MacAddress: String?
        /// `--network-alias`, and docker-compose's service names: more names the container
        /// has on that network (in its peers' /etc/hosts).
        public var Aliases: [String]?
        /// Links on a user-defined network, "NAME:ALIAS" (see `NetworkLinks`).
        public var Links: [String]?
        public init(IPAMConfig: EndpointIPAMConfig? = nil, MacAddress: String? = nil, Aliases: [String]? = nil) {
            self.IPAMConfig = IPAMConfig
            self.MacAddress = MacAddress
            self.Aliases = Aliases
        }
    }
    public var EndpointsConfig: [String: EndpointSettings?]?
    public init(EndpointsConfig: [String: EndpointSettings?]? = nil) { self.EndpointsConfig = EndpointsConfig }
}

/// Body of POST /containers/create: Config's fields at top level, plus HostConfig.
public struct CreateContainerRequest: Codable, Sendable {
    public var config: ContainerConfig
    public var hostConfig: HostConfig
    public var networkingConfig: NetworkingConfig?

    public init(config: ContainerConfig, hostConfig: HostConfig, networkingConfig: NetworkingConfig? = nil) {
        self.config = config
        self.hostConfig = hostConfig
        self.networkingConfig = networkingConfig
    }
    public init(from decoder: Decoder) throws {
        config = try ContainerConfig(from: decoder)
        let c = try decoder.container(keyedBy: Key.self)
        hostConfig = try c.decodeIfPresent(HostConfig.self, forKey: .HostConfig) ?? HostConfig()
        networkingConfig = try c.decodeIfPresent(NetworkingConfig.self, forKey: .NetworkingConfig)
    }
    public func encode(to encoder: Encoder) throws {
        try config.encode(to: encoder)
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(hostConfig, forKey: .HostConfig)
        try c.encodeIfPresent(networkingConfig, forKey: .NetworkingConfig)
    }
    enum Key: String, CodingKey { case HostConfig, NetworkingConfig }
}


public struct ExecCreateRequest: Codable, Sendable {
    public var User: String?
    public var Privileged: Bool?
    public var Tty: Bool?
    public var AttachStdin: Bool?
    public var AttachStdout: Bool?
    public var AttachStderr: Bool?
    public var Detach: Bool?
    public var Env: [String]?
    public var WorkingDir: String?
    public var Cmd: [String]?
    public var ConsoleSize: [Int]?
}

public struct ExecStartRequest: Codable, Sendable {
    public var Detach: Bool?
    public var Tty: Bool?
    public var ConsoleSize: [Int]?
    public init() {}
}

public struct CheckpointCreateRequest: Codable, Sendable {
    public var CheckpointID: String?
    public var CheckpointDir: String?
    public var Exit: Bool?
}

public struct ImageSummary: Codable, Sendable {
    public var Id: String
    public var ParentId: String
    public var RepoTags: [String]
    public var RepoDigests: [String]
    public var Created: Int64
    public var Size: Int64
    public var SharedSize: Int64
    public var Labels: [String: String]
    public var Containers: Int
}

public struct ImageInspect: Codable, Sendable {
    public var Id: String
    public var RepoTags: [String]
    public var RepoDigests: [String]
    public var Created: String
    public var Architecture: String
    public var Os: String
    public var Size: Int64
    public var Config: ContainerConfig
    /// Before API 1.45 dockerd also showed the config of the container the image was built
    /// in; docker-compose 1.29 reads its Volumes when it recreates a container (set by the
    /// API layer).
    public var ContainerConfig: ContainerConfig?
    public var RootFS: RootFSJSON
    public struct RootFSJSON: Codable, Sendable {
        public var `Type`: String
        public var Layers: [String]
    }
}

public struct ImageDeleteItem: Codable, Sendable {
    public var Untagged: String?
    public var Deleted: String?
}
