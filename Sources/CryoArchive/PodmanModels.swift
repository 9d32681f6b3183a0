import FoundationEssentials

/// `config.dump`: the union of checkpointctl's reduced container config and the libpod
/// fields podman's importer needs (`rootfsImageID`, `rootfsImageName`, `runtime`). Unknown
/// keys of podman's full config are ignored when read.
public struct ConfigDump: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var rootfsImage: String?
    public var rootfsImageRef: String?
    public var rootfsImageID: String?
    public var rootfsImageName: String?
    public var RawImageName: String?
    public var runtime: String?
    public var createdTime: String?
    public var checkpointedTime: String?
    public var restoredTime: String?
    public var restored: Bool?
    public var namedVolumes: [NamedVolume]?
    public var newPortMappings: [PortMapping]?

    public struct NamedVolume: Codable, Sendable, Equatable {
        public var volumeName: String
        public var dest: String
        public var options: [String]?
    }
    /// podman's port mapping (`container_port`, `host_port`, `protocol`, `range`, `host_ip`).
    public struct PortMapping: Codable, Sendable, Equatable {
        public var host_ip: String?
        public var container_port: UInt16
        public var host_port: UInt16
        public var range: UInt16?
        public var `protocol`: String?
        public init(host_ip: String?, container_port: UInt16, host_port: UInt16, protocol: String?) {
            self.host_ip = host_ip
            self.container_port = container_port
            self.host_port = host_port
            self.range = 1
            self.protocol = `protocol`
        }
    }

    public init(id: String, name: String) {
        self.id = id
        self.name = name
    }
}

/// `network.status`: network name → the interfaces' addresses (podman's StatusBlock, the
/// fields checkpointctl shows).
public typealias NetworkStatus = [String: NetworkStatusBlock]

public struct NetworkStatusBlock: Codable, Sendable, Equatable {
    public struct Subnet: Codable, Sendable, Equatable {
        public var ipnet: String
        public var gateway: String?
        public init(ipnet: String, gateway: String?) {
            self.ipnet = ipnet
            self.gateway = gateway
        }
    }
    public struct Interface: Codable, Sendable, Equatable {
        public var subnets: [Subnet]?
        public var mac_address: String?
        public init(subnets: [Subnet]?, mac_address: String?) {
            self.subnets = subnets
            self.mac_address = mac_address
        }
    }
    public var interfaces: [String: Interface]?
    public init(interfaces: [String: Interface]?) { self.interfaces = interfaces }
}

/// The few fields of `spec.dump` (an OCI runtime spec) an import reads when the archive was
/// not written by cryo (podman's): what to run and how.
public struct SpecDumpSummary: Codable, Sendable {
    public struct Process: Codable, Sendable {
        public var args: [String]?
        public var env: [String]?
        public var cwd: String?
        public var terminal: Bool?
    }
    public struct Mount: Codable, Sendable {
        public var destination: String
        public var type: String?
        public var source: String?
        public var options: [String]?
        public var isBind: Bool { type == "bind" || (options ?? []).contains { $0 == "bind" || $0 == "rbind" } }
    }
    public var process: Process?
    public var mounts: [Mount]?
    public var hostname: String?
    public var annotations: [String: String]?
}
