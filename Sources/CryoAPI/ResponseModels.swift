import CryoEngine
import FoundationEssentials

// Response bodies of the Docker API that only the API layer builds.

struct ContainerStateJSON: Codable, Sendable {
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
}

struct ContainerInspect: Codable, Sendable {
    var Id: String
    var Created: String
    var Path: String
    var Args: [String]
    var State: ContainerStateJSON
    var Image: String
    var Name: String
    var RestartCount: Int
    var Driver: String
    var Platform: String
    var LogPath: String
    var Config: ContainerConfig
    var HostConfig: HostConfig
    var Mounts: [MountPoint]
}

struct MountPoint: Codable, Sendable {
    var `Type`: String
    var Source: String
    var Destination: String
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
    var Ports: [String]
    var Labels: [String: String]
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
