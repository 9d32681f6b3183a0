/// One `-p/--publish` value as docker reads it (nat.ParsePortSpec), without ranges:
///
///     80              container port 80/tcp on a free host port, every host address
///     8080:80         host port 8080
///     127.0.0.1:8080:80
///     127.0.0.1::80   a free host port on 127.0.0.1
///     8080:80/udp     (any form) + /tcp or /udp
///
/// `hostPort` "" means "any free port", as in the API's PortBindings.
public struct PortSpec: Sendable, Equatable {
    public var hostIP: String
    public var hostPort: String
    public var containerPort: Int
    public var proto: String

    public init(hostIP: String = "", hostPort: String = "", containerPort: Int, proto: String = "tcp") {
        self.hostIP = hostIP
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.proto = proto
    }

    /// The key of ExposedPorts and PortBindings: "80/tcp".
    public var key: String { "\(containerPort)/\(proto)" }

    public static func parse(_ raw: String) throws -> PortSpec {
        func bad(_ why: String) -> ClientError { ClientError.usage("invalid port specification: \"\(raw)\": \(why)") }
        var text = Substring(raw)
        var proto = "tcp"
        if let slash = text.lastIndex(of: "/") {
            proto = String(text[text.index(after: slash)...]).lowercased()
            text = text[..<slash]
            guard proto == "tcp" || proto == "udp" else {
                throw bad(proto == "sctp" ? "sctp is not supported by cryo" : "the protocol must be tcp or udp")
            }
        }
        if text.hasPrefix("[") { throw bad("IPv6 host addresses are not supported by cryo") }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard (1...3).contains(parts.count) else { throw bad("use [[HOST_IP:]HOST_PORT:]CONTAINER_PORT[/PROTOCOL]") }
        if parts.contains(where: { $0.contains("-") }) { throw bad("port ranges are not supported by cryo") }
        let hostIP = parts.count == 3 ? parts[0] : ""
        let hostPort = parts.count >= 2 ? parts[parts.count - 2] : ""
        let container = parts[parts.count - 1]
        guard let cport = Int(container), (1...65535).contains(cport), container.allSatisfy(\.isASCIIDigit) else {
            throw bad("invalid containerPort: \(container)")
        }
        if !hostPort.isEmpty {
            guard let h = Int(hostPort), (1...65535).contains(h), hostPort.allSatisfy(\.isASCIIDigit) else {
                throw bad("invalid hostPort: \(hostPort)")
            }
        }
        if !hostIP.isEmpty && !isIPv4(hostIP) { throw bad("invalid IP address: \(hostIP)") }
        return PortSpec(hostIP: hostIP, hostPort: hostPort, containerPort: cport, proto: proto)
    }

    /// `--expose 80[/udp]`: a container port only.
    public static func parseExposed(_ raw: String) throws -> String {
        var text = Substring(raw), proto = "tcp"
        if let slash = text.lastIndex(of: "/") {
            proto = String(text[text.index(after: slash)...]).lowercased()
            text = text[..<slash]
        }
        guard proto == "tcp" || proto == "udp", let p = Int(text), (1...65535).contains(p), text.allSatisfy(\.isASCIIDigit) else {
            throw ClientError.usage("invalid --expose \"\(raw)\": use PORT[/tcp|udp] (ranges are not supported by cryo)")
        }
        return "\(p)/\(proto)"
    }

    static func isIPv4(_ s: String) -> Bool {
        let p = s.split(separator: ".", omittingEmptySubsequences: false)
        return p.count == 4 && p.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCIIDigit) && Int($0)! <= 255 }
    }
}
