import FoundationEssentials

// What cryod answers, decoded leniently: only the fields the CLI shows.

public struct ContainerSummaryJSON: Codable, Sendable {
    public var Id: String
    public var Names: [String]?
    public var Image: String?
    public var ImageID: String?
    public var Command: String?
    public var Created: Int64?
    public var State: String?
    public var Status: String?
    public var Labels: [String: String]?
    public var Ports: [PortJSON]?
    public var SizeRw: Int64?
    public var SizeRootFs: Int64?
    public var Mounts: [MountPointJSON]?
    public var NetworkSettings: SummaryNetworkSettingsJSON?
}

/// A container's mount in `GET /containers/json` (ps's MOUNTS and LOCAL VOLUMES columns).
public struct MountPointJSON: Codable, Sendable {
    public var Name: String?
    public var Source: String?
    public var Driver: String?
    public init(Name: String? = nil, Source: String? = nil, Driver: String? = nil) {
        self.Name = Name
        self.Source = Source
        self.Driver = Driver
    }
}

/// The networks a listed container is attached to (ps's NETWORKS column); only the names matter.
public struct SummaryNetworkSettingsJSON: Codable, Sendable {
    public struct Endpoint: Codable, Sendable { public init() {} }
    public var Networks: [String: Endpoint]?
    public init(Networks: [String: Endpoint]?) { self.Networks = Networks }
}

/// One published port of `GET /containers/json`.
public struct PortJSON: Codable, Sendable, Equatable {
    public var IP: String?
    public var PrivatePort: Int
    public var PublicPort: Int?
    public var `Type`: String?
    public init(IP: String?, PrivatePort: Int, PublicPort: Int?, Type: String?) {
        self.IP = IP
        self.PrivatePort = PrivatePort
        self.PublicPort = PublicPort
        self.Type = Type
    }
}

public struct NetworkJSON: Codable, Sendable {
    public var Name: String
    public var Id: String
    public var Created: String?
    public var Scope: String?
    public var Driver: String?
    public var Internal: Bool?
    public var EnableIPv4: Bool?
    public var EnableIPv6: Bool?
    public var Labels: [String: String]?
}

public struct NetworkCreateResponseJSON: Codable, Sendable {
    public var Id: String
    public var Warning: String?
}

public struct ContainerInspectJSON: Codable, Sendable {
    public struct Config: Codable, Sendable { public var Tty: Bool?; public var OpenStdin: Bool? }
    public struct State: Codable, Sendable { public var Running: Bool?; public var Status: String?; public var ExitCode: Int32? }
    public var Id: String
    public var Name: String?
    public var Config: Config?
    public var State: State?
    public struct NetworkSettings: Codable, Sendable {
        public struct Binding: Codable, Sendable { public var HostIp: String?; public var HostPort: String? }
        public var Ports: [String: [Binding]?]?
    }
    public var NetworkSettings: NetworkSettings?
}

public struct CreateResponseJSON: Codable, Sendable {
    public var Id: String
    public var Warnings: [String]?
}

public struct WaitResponseJSON: Codable, Sendable {
    public struct WaitError: Codable, Sendable { public var Message: String? }
    public var StatusCode: Int32
    public var Error: WaitError?
}

public struct ExecInspectJSON: Codable, Sendable {
    public var Running: Bool?
    public var ExitCode: Int32?
}

public struct ImageSummaryJSON: Codable, Sendable {
    public var Id: String
    public var RepoTags: [String]?
    public var Created: Int64?
    public var Size: Int64?
    public var RepoDigests: [String]?
    public var Containers: Int?
    public var SharedSize: Int64?
}

public struct ImageDeleteJSON: Codable, Sendable {
    public var Untagged: String?
    public var Deleted: String?
}

public struct CheckpointJSON: Codable, Sendable {
    public var Name: String
}

/// cryod's answer to POST /containers/{id}/checkpoints (docker's is empty).
public struct CheckpointReportJSON: Codable, Sendable, Equatable {
    public struct CRIU: Codable, Sendable, Equatable {
        public var freezingTimeUs: UInt64?
        public var frozenTimeUs: UInt64?
        public var memdumpTimeUs: UInt64?
        public var memwriteTimeUs: UInt64?
        public var pagesScanned: UInt64?
        public var pagesWritten: UInt64?
    }
    public var name: String?
    public var container: String?
    public var directory: String?
    public var leftRunning: Bool?
    public var durationMs: Double?
    public var bytesWritten: UInt64?
    public var criu: CRIU?

    /// One line for humans: what CRIU measured.
    public var summary: String {
        var parts: [String] = []
        if let c = criu {
            if let f = c.freezingTimeUs { parts.append("freeze \(Format.millis(Double(f) / 1000))") }
            if let f = c.frozenTimeUs { parts.append("frozen \(Format.millis(Double(f) / 1000))") }
            if let d = c.memdumpTimeUs { parts.append("memory dump \(Format.millis(Double(d) / 1000))") }
            if let w = c.memwriteTimeUs { parts.append("memory write \(Format.millis(Double(w) / 1000))") }
            if let p = c.pagesWritten {
                parts.append("\(p) pages written" + (c.pagesScanned.map { " of \($0) scanned" } ?? ""))
            }
        } else {
            parts.append("no CRIU statistics")
        }
        if let b = bytesWritten { parts.append("\(Format.size(Int64(b))) written") }
        let total = durationMs.map { "total \(Format.millis($0))" } ?? "total unknown"
        let left = (leftRunning ?? false) ? ", container left running" : ""
        return "checkpoint \(name ?? "?"): " + parts.joined(separator: ", ") + "; \(total)\(left)"
    }
}

public struct JSONMessage: Codable, Sendable {
    public struct Detail: Codable, Sendable { public var message: String? }
    public var stream: String?
    public var status: String?
    public var id: String?
    public var error: String?
    public var errorDetail: Detail?
}
