import FoundationEssentials

/// A CNI 1.0 success result.
public struct CNIResult: Codable, Equatable, Sendable {
    public struct Interface: Codable, Equatable, Sendable {
        public var name: String
        public var mac: String?
        public var sandbox: String?
    }
    public struct IPConfig: Codable, Equatable, Sendable {
        /// Index into `interfaces`.
        public var interface: Int?
        /// CIDR ("198.18.0.2/24").
        public var address: String
        public var gateway: String?
    }
    public struct Route: Codable, Equatable, Sendable {
        public var dst: String
        public var gw: String?
    }
    public struct DNS: Codable, Equatable, Sendable {
        public var nameservers: [String]?
        public var domain: String?
        public var search: [String]?
        public var options: [String]?
    }

    public var cniVersion: String?
    public var interfaces: [Interface]?
    public var ips: [IPConfig]?
    public var routes: [Route]?
    public var dns: DNS?

    public static func parse(_ bytes: [UInt8]) throws -> CNIResult {
        try JSONDecoder().decode(CNIResult.self, from: Data(bytes))
    }
}

/// A CNI error result: `{"code", "msg", "details"}` on stdout with a non-zero exit.
public struct CNIErrorResult: Codable, Equatable, Sendable {
    public var code: Int
    public var msg: String
    public var details: String?

    public static func parse(_ bytes: [UInt8]) -> CNIErrorResult? {
        try? JSONDecoder().decode(CNIErrorResult.self, from: Data(bytes))
    }
}

/// A container's place on one network, as the engine needs it.
public struct Attachment: Codable, Equatable, Sendable {
    public var containerID: String
    public var network: String
    public var networkID: String
    /// Address without prefix ("198.18.0.2").
    public var ip: String
    public var prefixLength: Int
    /// Empty on a network without gateway in the result.
    public var gateway: String
    /// MAC of the interface inside the container.
    public var mac: String
    /// Interface name inside the container ("eth0").
    public var interface: String
    /// The veth's host end, and the bridge it hangs on.
    public var hostInterface: String
    public var bridge: String
    public var ports: [PortMapping]

    /// Reads the container's address out of a result: the first IPv4 config on the interface
    /// that lives in a sandbox (or, failing that, the first IPv4 config).
    public static func from(result: CNIResult, containerID: String, network: NetworkConfig,
                            interface: String, ports: [PortMapping]) throws -> Attachment {
        let ifaces = result.interfaces ?? []
        let ipv4 = (result.ips ?? []).filter { ip in
            ip.address.split(separator: "/").first.map { IPv4Address(String($0)) != nil } ?? false
        }
        let inSandbox = ipv4.first { c in c.interface.map { $0 >= 0 && $0 < ifaces.count && ifaces[$0].sandbox != nil } ?? false }
        guard let chosen = inSandbox ?? ipv4.first else {
            throw NetworkError.pluginOutput(plugin: "bridge", command: "ADD", "result has no IPv4 address")
        }
        let parts = chosen.address.split(separator: "/")
        let container = chosen.interface.flatMap { $0 >= 0 && $0 < ifaces.count ? ifaces[$0] : nil }
            ?? ifaces.first { $0.sandbox != nil }
        let host = ifaces.first { $0.sandbox == nil && $0.name != network.bridge }
        return Attachment(
            containerID: containerID, network: network.name, networkID: network.id,
            ip: String(parts[0]), prefixLength: parts.count > 1 ? Int(parts[1]) ?? 32 : 32,
            gateway: chosen.gateway ?? "", mac: container?.mac ?? "", interface: container?.name ?? interface,
            hostInterface: host?.name ?? "", bridge: network.bridge, ports: ports)
    }
}
