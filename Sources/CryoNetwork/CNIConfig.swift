/// A published port: `-p [HOSTIP:]HOSTPORT:CONTAINERPORT[/udp]`.
public struct PortMapping: Codable, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// 0: not chosen yet — `CNIRunner.attach` picks a free port (docker's `-p 80`, `-P`).
    public var hostPort: Int
    public var containerPort: Int
    /// "tcp" or "udp".
    public var `protocol`: String
    /// Empty: every local address of the host.
    public var hostIP: String

    public init(hostPort: Int, containerPort: Int, protocol: String = "tcp", hostIP: String = "") {
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.protocol = `protocol`
        self.hostIP = hostIP
    }

    /// Parses Docker's short form: `8080:80`, `8080:80/udp`, `127.0.0.1:8080:80/tcp`.
    public static func parse(_ text: String) throws -> PortMapping {
        var spec = Substring(text), proto = "tcp"
        if let slash = spec.lastIndex(of: "/") {
            proto = String(spec[spec.index(after: slash)...]).lowercased()
            spec = spec[..<slash]
        }
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || parts.count == 3, let hp = Int(parts[parts.count - 2]), hp != 0, let cp = Int(parts[parts.count - 1]) else {
            throw NetworkError.invalidPort("\"\(text)\" is not [HOSTIP:]HOSTPORT:CONTAINERPORT[/udp]")
        }
        let m = PortMapping(hostPort: hp, containerPort: cp, protocol: proto, hostIP: parts.count == 3 ? parts[0] : "")
        try m.validate()
        return m
    }

    public func validate() throws {
        guard (0...65535).contains(hostPort) else { throw NetworkError.invalidPort("host port \(hostPort) is not in 1-65535") }
        guard (1...65535).contains(containerPort) else { throw NetworkError.invalidPort("container port \(containerPort) is not in 1-65535") }
        guard `protocol` == "tcp" || `protocol` == "udp" else { throw NetworkError.invalidPort("protocol \"\(`protocol`)\" is not tcp or udp") }
        guard hostIP.isEmpty || IPv4Address(hostIP) != nil else { throw NetworkError.invalidPort("host IP \"\(hostIP)\" is not an IPv4 address") }
    }

    /// Whether two mappings want the same host socket.
    public func clashes(with other: PortMapping) -> Bool {
        guard hostPort != 0, hostPort == other.hostPort, `protocol` == other.protocol else { return false }
        func any(_ ip: String) -> Bool { ip.isEmpty || ip == "0.0.0.0" }
        return any(hostIP) || any(other.hostIP) || hostIP == other.hostIP
    }

    public var description: String { "\(hostIP.isEmpty ? "" : hostIP + ":")\(hostPort):\(containerPort)/\(`protocol`)" }

    var json: JSONValue {
        ["hostPort": .int(Int64(hostPort)), "containerPort": .int(Int64(containerPort)),
         "protocol": .string(`protocol`), "hostIP": .string(hostIP)]
    }
}

/// The CNI network configuration list of a cryo network, and the per-plugin configs derived
/// from it (what libcni does for a runtime: name/cniVersion copied in, runtimeConfig filtered by
/// each plugin's capabilities, prevResult chained).
public enum CNIConfig {
    /// The newest version Debian's containernetworking-plugins 1.1.1 speak.
    public static let cniVersion = "1.0.0"

    /// bridge (gateway address on the bridge, no masquerade: traffic stays on this host;
    /// hairpin so a container reaches itself through a published port) with host-local IPAM
    /// whose `dataDir` is under cryo's root, then portmap. macvlan: one plugin, a macvlan link
    /// on the parent (no port publishing: the container is on the segment with its own
    /// address). `explicitIP`: the attach asks for an address, which may lie outside the
    /// network's ip-range (as in Docker), so host-local gets the whole subnet.
    public static func conflist(for network: NetworkConfig, ipamDataDir: String, explicitIP: Bool = false) -> JSONValue {
        var range: [String: JSONValue] = ["subnet": .string(network.subnet), "gateway": .string(network.gateway)]
        if !explicitIP, let r = network.ipRange, let sub = try? network.parsedSubnet,
           let rs = try? IPv4Subnet.parseRange(r, in: sub) {
            let (first, last) = sub.allocationBounds(rs)
            range["rangeStart"] = .string(first.description)
            range["rangeEnd"] = .string(last.description)
        }
        var ipam: [String: JSONValue] = [
            "type": "host-local",
            "dataDir": .string(ipamDataDir),
            "ranges": [[.object(range)]],
        ]
        ipam["routes"] = network.internal ? [] : [["dst": "0.0.0.0/0"]]
        if network.isMacvlan {
            let macvlan: JSONValue = [
                "type": "macvlan",
                "master": .string(network.parent ?? ""),
                "mode": .string(network.macvlanMode ?? "bridge"),
                "capabilities": ["ips": true, "mac": true],
                "ipam": .object(ipam),
            ]
            return ["cniVersion": .string(cniVersion), "name": .string(network.name), "plugins": [macvlan]]
        }
        let bridge: JSONValue = [
            "type": "bridge",
            "bridge": .string(network.bridge),
            "isGateway": true,
            "ipMasq": false,
            "hairpinMode": true,
            "capabilities": ["ips": true, "mac": true],
            "ipam": .object(ipam),
        ]
        let portmap: JSONValue = [
            "type": "portmap",
            "snat": true,
            "capabilities": ["portMappings": true],
        ]
        return [
            "cniVersion": .string(cniVersion),
            "name": .string(network.name),
            "plugins": [bridge, portmap],
        ]
    }

    /// Capability arguments of one attachment (CNI's `runtimeConfig`).
    public static func runtimeArgs(ip: IPv4Address?, ports: [PortMapping], mac: MACAddress? = nil) -> [String: JSONValue] {
        var args: [String: JSONValue] = [:]
        if let ip { args["ips"] = [.string(ip.description)] }
        if let mac { args["mac"] = .string(mac.description) }
        if !ports.isEmpty { args["portMappings"] = .array(ports.map(\.json)) }
        return args
    }

    /// The stdin of plugin `index` of `conflist`.
    public static func pluginConfig(_ conflist: JSONValue, index: Int, runtimeArgs: [String: JSONValue],
                                    prevResult: JSONValue?) -> JSONValue {
        guard var plugin = conflist["plugins"]?.arrayValue?[index].objectValue else { return .null }
        plugin["cniVersion"] = conflist["cniVersion"]
        plugin["name"] = conflist["name"]
        var runtime: [String: JSONValue] = [:]
        for (cap, on) in plugin["capabilities"]?.objectValue ?? [:] where on == .bool(true) {
            if let v = runtimeArgs[cap] { runtime[cap] = v }
        }
        if !runtime.isEmpty { plugin["runtimeConfig"] = .object(runtime) } else { plugin["runtimeConfig"] = nil }
        if let prevResult { plugin["prevResult"] = prevResult }
        return .object(plugin)
    }

    public static func pluginTypes(_ conflist: JSONValue) -> [String] {
        (conflist["plugins"]?.arrayValue ?? []).map { $0["type"]?.stringValue ?? "?" }
    }
}
