import CryoNetwork
import Glibc

/// `--add-host NAME:IP` / docker-compose's `extra_hosts` (HostConfig.ExtraHosts): more lines in
/// the container's /etc/hosts. "host-gateway" stands for the host as the container reaches
/// it: its network's gateway, as dockerd maps it to its bridge's address.
public enum ExtraHosts {
    public static let hostGateway = "host-gateway"

    /// The entries checked, as (name, address) pairs: "NAME:IP" or "NAME=IP" (the docker CLI's
    /// two spellings; an IPv6 address keeps its colons, optionally in brackets).
    public static func parse(_ raw: [String]?) throws -> [(name: String, ip: String)] {
        try (raw ?? []).map { entry in
            guard let sep = entry.firstIndex(where: { $0 == ":" || $0 == "=" }) else {
                throw EngineError.bad("invalid extra host \"\(entry)\": want NAME:IP")
            }
            let name = String(entry[..<sep])
            var ip = String(entry[entry.index(after: sep)...])
            if ip.hasPrefix("[") && ip.hasSuffix("]") { ip = String(ip.dropFirst().dropLast()) }
            guard !name.isEmpty, name.utf8.count <= 253,
                  name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) else {
                throw EngineError.bad("invalid extra host \"\(entry)\": the name must be 1 to 253 of [a-zA-Z0-9_.-]")
            }
            guard ip == hostGateway || isAddress(ip) else {
                throw EngineError.bad("invalid extra host \"\(entry)\": \(ip) is not an IP address or \(hostGateway)")
            }
            return (name, ip)
        }
    }

    /// The entries for the hosts file: host-gateway becomes `gateway` (left out without one:
    /// a container with no network has no way to the host).
    public static func resolved(_ entries: [(name: String, ip: String)], gateway: String?) -> [(name: String, ip: String)] {
        entries.compactMap { e in e.ip == hostGateway ? gateway.map { (e.name, $0) } : e }
    }

    static func isAddress(_ s: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, s, &v4) == 1 || inet_pton(AF_INET6, s, &v6) == 1
    }
}
