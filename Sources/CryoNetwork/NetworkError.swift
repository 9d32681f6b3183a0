/// Everything CryoNetwork refuses or fails at, in words a user can act on.
public enum NetworkError: Error, CustomStringConvertible, Sendable, Equatable {
    case invalidName(String, String)
    case invalidSubnet(String, String)
    case invalidGateway(String, String)
    case invalidBridge(String, String)
    case nameInUse(String)
    case subnetOverlap(subnet: String, network: String, existing: String)
    case bridgeInUse(String, String)
    case noFreeSubnet(String)
    case notFound(String)
    case ambiguous(String)
    case predefined(String)
    case activeEndpoints(network: String, containers: [String])
    case invalidIP(String, String)
    case ipOutsideSubnet(ip: String, network: String, subnet: String)
    case ipNotAssignable(ip: String, network: String, reason: String)
    case ipInUse(ip: String, network: String, container: String)
    case invalidPort(String)
    case portInUse(port: Int, proto: String, hostIP: String, reason: String)
    case plugin(plugin: String, command: String, code: Int, message: String, details: String)
    case pluginOutput(plugin: String, command: String, String)
    case pluginMissing(String)
    case corruptState(String, String)
    case invalidOption(String)
    case invalidParent(String, String)
    case parentInUse(parent: String, network: String)
    case invalidIPRange(String, String)

    public var description: String {
        switch self {
        case .invalidName(let n, let why): return "invalid network name \"\(n)\": \(why)"
        case .invalidSubnet(let s, let why): return "invalid subnet \"\(s)\": \(why)"
        case .invalidGateway(let g, let why): return "invalid gateway \"\(g)\": \(why)"
        case .invalidBridge(let b, let why): return "invalid bridge name \"\(b)\": \(why)"
        case .nameInUse(let n): return "network with name \(n) already exists"
        case .subnetOverlap(let s, let n, let e):
            return "subnet \(s) overlaps with network \(n) (\(e)); choose a subnet that does not"
        case .bridgeInUse(let b, let why): return "bridge \(b) \(why)"
        case .noFreeSubnet(let range): return "no free /24 subnet left in \(range); pass a subnet explicitly"
        case .notFound(let n): return "network \(n) not found"
        case .ambiguous(let n): return "network \(n) is ambiguous (matches several networks)"
        case .predefined(let n): return "\(n) is a pre-defined network and cannot be removed"
        case .activeEndpoints(let n, let cs):
            return "network \(n) has active endpoints (containers \(cs.joined(separator: ", "))); disconnect them first"
        case .invalidIP(let ip, let why): return "invalid IP address \"\(ip)\": \(why)"
        case .ipOutsideSubnet(let ip, let n, let s): return "IP address \(ip) is not in network \(n)'s subnet \(s)"
        case .ipNotAssignable(let ip, let n, let why): return "IP address \(ip) cannot be assigned on network \(n): \(why)"
        case .ipInUse(let ip, let n, let c): return "IP address \(ip) is already in use on network \(n) (by container \(c))"
        case .invalidPort(let why): return "invalid port mapping: \(why)"
        case .portInUse(let port, let proto, let hostIP, let why):
            return "host port \(hostIP.isEmpty ? "0.0.0.0" : hostIP):\(port)/\(proto) is not available: \(why)"
        case .plugin(let p, let cmd, let code, let msg, let details):
            return "CNI plugin \(p) failed (\(cmd)): \(msg)\(details.isEmpty ? "" : " (\(details))") [code \(code)]"
        case .pluginOutput(let p, let cmd, let why): return "CNI plugin \(p) (\(cmd)): \(why)"
        case .pluginMissing(let p): return "CNI plugin \(p) is not installed (looked in the CNI path); install containernetworking-plugins"
        case .corruptState(let path, let why): return "cannot read \(path): \(why)"
        case .invalidOption(let why): return why
        case .invalidParent(let p, let why): return "-o parent interface \(p) \(why)"
        case .parentInUse(let p, let n): return "network \(n) is already using parent interface \(p)"
        case .invalidIPRange(let r, let why): return "invalid ip-range \"\(r)\": \(why)"
        }
    }
}
