import CryoEngine
import FoundationEssentials

// Response bodies of the Docker API that only the API layer builds.

struct ContainerInspectState: Codable, Sendable {
    var Status: String
    var Running: Bool
    var Paused: Bool
    var Restarting: Bool
    var OOMKilled: Bool
    var Dead: Bool
    var Pid: Int32
    var ExitCode: Int32
    var Error: String
    var StartedAt: String
    var FinishedAt: String
    /// Only for a container with a health check (dockerd omits it otherwise).
    var Health: ContainerHealth?
}

struct ContainerInspect: Codable, Sendable {
    var Id: String
    var Created: String
    var Path: String
    var Args: [String]
    var State: ContainerInspectState
    var Image: String
    var Name: String
    var RestartCount: Int
    var Driver: String
    var Platform: String
    var LogPath: String
    var Config: ContainerConfig
    var HostConfig: HostConfig
    var Mounts: [MountPoint]
    var NetworkSettings: NetworkSettingsJSON
}

struct PortBindingJSON: Codable, Sendable {
    var HostIp: String
    var HostPort: String
}

struct EndpointJSON: Codable, Sendable {
    /// The endpoint's aliases (nil: none, as dockerd's null).
    var Aliases: [String]?
    /// The endpoint's links, "TARGET:ALIAS" (nil: none).
    var Links: [String]?
    var NetworkID: String
    var EndpointID: String
    var Gateway: String
    var IPAddress: String
    var IPPrefixLen: Int
    var MacAddress: String
}

struct NetworkSettingsJSON: Codable, Sendable {
    var Bridge: String
    var SandboxKey: String
    var Ports: [String: [PortBindingJSON]]
    var Gateway: String
    var IPAddress: String
    var IPPrefixLen: Int
    var MacAddress: String
    var Networks: [String: EndpointJSON]
}

/// `ps`'s Ports entries (the CLI prints "0.0.0.0:8080->80/tcp").
struct PortJSON: Codable, Sendable {
    var IP: String?
    var PrivatePort: Int
    var PublicPort: Int?
    var `Type`: String
}

struct NetworkJSON: Codable, Sendable {
    struct IPAMConfigJSON: Codable, Sendable { var Subnet: String; var Gateway: String; var IPRange: String? }
    struct IPAMJSON: Codable, Sendable {
        var Driver: String
        var Options: [String: String]
        var Config: [IPAMConfigJSON]
    }
    struct ContainerJSON: Codable, Sendable {
        var Name: String
        var EndpointID: String
        var MacAddress: String
        var IPv4Address: String
        var IPv6Address: String
    }
    struct ConfigFromJSON: Codable, Sendable { var Network: String }
    var Name: String
    var Id: String
    var Created: String
    var Scope: String
    var Driver: String
    var EnableIPv4: Bool
    var EnableIPv6: Bool
    var IPAM: IPAMJSON
    var Internal: Bool
    var Attachable: Bool
    var Ingress: Bool
    var ConfigFrom: ConfigFromJSON
    var ConfigOnly: Bool
    var Containers: [String: ContainerJSON]
    var Options: [String: String]
    var Labels: [String: String]
}

struct NetworkCreateRequest: Codable, Sendable {
    struct IPAMConfigReq: Codable, Sendable { var Subnet: String?; var Gateway: String?; var IPRange: String? }
    struct IPAMReq: Codable, Sendable { var Driver: String?; var Config: [IPAMConfigReq]? }
    var Name: String?
    var Driver: String?
    var Internal: Bool?
    var EnableIPv6: Bool?
    var IPAM: IPAMReq?
    /// Driver options (`-o`): macvlan's parent and macvlan_mode, the bridge's name.
    var Options: [String: String]?
    var Labels: [String: String]?
}

/// Body of `POST /networks/{id}/connect`.
struct NetworkConnectRequest: Codable, Sendable {
    var Container: String?
    var EndpointConfig: NetworkingConfig.EndpointSettings?
}

/// Body of `POST /networks/{id}/disconnect` (Force changes nothing for cryo: a disconnect
/// of a container that is attached always goes ahead).
struct NetworkDisconnectRequest: Codable, Sendable {
    var Container: String?
    var Force: Bool?
}

struct NetworkCreateResponse: Codable, Sendable {
    var Id: String
    var Warning: String
}

struct MountPoint: Codable, Sendable {
    var `Type`: String
    /// Volumes only (with Driver).
    var Name: String? = nil
    var Source: String
    var Destination: String
    var Driver: String? = nil
    var Mode: String
    var RW: Bool
    var Propagation: String
}

struct ContainerSummary: Codable, Sendable {
    var Id: String
    var Names: [String]
    var Image: String
    var ImageID: String
    var Command: String
    var Created: Int64
    var State: String
    var Status: String
    var Ports: [PortJSON]
    var Labels: [String: String]
    /// `ps -s` (`size=1`) and `system df`: the writable layer, and that plus the image.
    var SizeRw: Int64?
    var SizeRootFs: Int64?
}

struct WaitResponse: Codable, Sendable {
    struct WaitError: Codable, Sendable { public var Message: String }
    var StatusCode: Int32
    var Error: WaitError?
}

struct ExecInspect: Codable, Sendable {
    var ID: String
    var Running: Bool
    var ExitCode: Nullable<Int32>
    var ContainerID: String
    var Pid: Int32
    var OpenStdin: Bool
    var OpenStdout: Bool
    var OpenStderr: Bool
    var ProcessConfig: ProcessConfig
    struct ProcessConfig: Codable, Sendable {
        var tty: Bool
        var entrypoint: String
        var arguments: [String]
        var user: String
    }
}

struct CheckpointSummary: Codable, Sendable {
    var Name: String
}

struct CreateContainerResponse: Codable, Sendable {
    var Id: String
    var Warnings: [String]
}

/// Encodes nil as JSON null rather than leaving the key out: Docker always sends
/// `"ExitCode": null` for a running exec, and docker-py's exec_run reads the key.
struct Nullable<T: Codable & Sendable>: Codable, Sendable {
    var value: T?
    init(_ value: T?) { self.value = value }
    init(from d: Decoder) throws {
        let c = try d.singleValueContainer()
        value = c.decodeNil() ? nil : try c.decode(T.self)
    }
    func encode(to e: Encoder) throws {
        var c = e.singleValueContainer()
        if let value { try c.encode(value) } else { try c.encodeNil() }
    }
}
