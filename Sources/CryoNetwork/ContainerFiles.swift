import CryoLinux
import Glibc

/// A container's `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`, generated into a host
/// directory (the engine bind-mounts them; for CRIU they are external mounts).
public enum ContainerFiles {
    public static let hostnameFile = "hostname"
    public static let hostsFile = "hosts"
    public static let resolvFile = "resolv.conf"

    /// Writes the three files into `dir`. `hosts` has the localhost lines, the container's own
    /// `ip` with `hostname` (and `aliases`), then `peers` (containers on the same user-defined
    /// network, so names resolve between them). `resolv.conf` takes the host's nameservers
    /// (from `hostResolvConf`) except loopback ones, which mean nothing inside another network
    /// namespace, plus its search and options lines.
    ///
    /// A file that exists is rewritten in place, not replaced: it may be bind-mounted into a
    /// running container, which would keep seeing the old inode after a rename.
    public static func write(dir: String, hostname: String, ip: String?, peers: [(name: String, ip: String)] = [],
                             aliases: [String] = [], extraHosts: [(name: String, ip: String)] = [],
                             hostResolvConf: String = "/etc/resolv.conf") throws {
        for n in [hostname] + aliases + peers.map(\.name) + extraHosts.map(\.name) { try validateHostName(n) }
        try validateExtraAddresses(extraHosts)
        if let ip { guard IPv4Address(ip) != nil else { throw NetworkError.invalidIP(ip, "not an IPv4 address") } }
        for p in peers { guard IPv4Address(p.ip) != nil else { throw NetworkError.invalidIP(p.ip, "not an IPv4 address (peer \(p.name))") } }
        try FS.mkdirAll(dir, mode: 0o755)
        try put(dir + "/" + hostnameFile, hostname + "\n")
        try put(dir + "/" + hostsFile, hosts(hostname: hostname, ip: ip, peers: peers, aliases: aliases, extraHosts: extraHosts))
        let host = (try? FS.readString(hostResolvConf)) ?? ""
        try put(dir + "/" + resolvFile, resolvConf(fromHost: host))
    }

    /// Rewrites only `hosts` (a peer joined or left the network).
    public static func updateHosts(dir: String, hostname: String, ip: String?, peers: [(name: String, ip: String)],
                                   aliases: [String] = [], extraHosts: [(name: String, ip: String)] = []) throws {
        for n in [hostname] + aliases + peers.map(\.name) + extraHosts.map(\.name) { try validateHostName(n) }
        try validateExtraAddresses(extraHosts)
        try put(dir + "/" + hostsFile, hosts(hostname: hostname, ip: ip, peers: peers, aliases: aliases, extraHosts: extraHosts))
    }

    /// `extraHosts` (`--add-host`) come after the fixed lines, before the container's own, as
    /// in dockerd's file; each address is written as given (IPv4 or IPv6).
    public static func hosts(hostname: String, ip: String?, peers: [(name: String, ip: String)], aliases: [String] = [],
                             extraHosts: [(name: String, ip: String)] = []) -> String {
        var lines = [
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
            "fe00::0\tip6-localnet",
            "ff00::0\tip6-mcastprefix",
            "ff02::1\tip6-allnodes",
            "ff02::2\tip6-allrouters",
        ]
        for e in extraHosts { lines.append(e.ip + "\t" + e.name) }
        if let ip {
            var own: [String] = []
            for n in [hostname] + aliases where !own.contains(n) { own.append(n) }
            lines.append(ip + "\t" + own.joined(separator: " "))
        }
        // A peer's aliases come as more entries with its address: one line per address.
        var byIP: [(ip: String, names: [String])] = []
        for p in peers where p.name != hostname || p.ip != ip {
            if let i = byIP.firstIndex(where: { $0.ip == p.ip }) {
                if !byIP[i].names.contains(p.name) { byIP[i].names.append(p.name) }
            } else {
                byIP.append((p.ip, [p.name]))
            }
        }
        for p in byIP { lines.append(p.ip + "\t" + p.names.joined(separator: " ")) }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func resolvConf(fromHost text: String) -> String {
        var servers: [String] = [], other: [String] = [], dropped: [String] = []
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = String(raw).trimmingWhitespace()
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let key = fields.first, !key.hasPrefix("#"), !key.hasPrefix(";") else { continue }
            switch key {
            case "nameserver" where fields.count >= 2:
                let addr = fields[1]
                if isLoopback(addr) { dropped.append(addr) } else { servers.append(addr) }
            case "search", "domain", "options":
                other.append(fields.joined(separator: " "))
            default:
                continue
            }
        }
        var out = ["# Generated by cryo from the host's resolv.conf."]
        if !dropped.isEmpty { out.append("# Left out (loopback on the host, unreachable from the container): \(dropped.joined(separator: ", "))") }
        if servers.isEmpty { out.append("# The host has no nameserver usable from a container network.") }
        out += other
        out += servers.map { "nameserver " + $0 }
        return out.joined(separator: "\n") + "\n"
    }

    static func isLoopback(_ addr: String) -> Bool {
        if let a = IPv4Address(addr) { return a.isLoopback }
        let lower = addr.lowercased()
        return lower == "::1" || lower == "0:0:0:0:0:0:0:1"
    }

    /// An extra host's address must be one (it goes into the file as a line of its own).
    static func validateExtraAddresses(_ extra: [(name: String, ip: String)]) throws {
        for e in extra {
            var v4 = in_addr(), v6 = in6_addr()
            guard inet_pton(AF_INET, e.ip, &v4) == 1 || inet_pton(AF_INET6, e.ip, &v6) == 1 else {
                throw NetworkError.invalidIP(e.ip, "not an IP address (extra host \(e.name))")
            }
        }
    }

    static func validateHostName(_ n: String) throws {
        guard !n.isEmpty, n.utf8.count <= 253,
              n.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) else {
            throw NetworkError.invalidName(n, "a host name must be 1 to 253 of [a-zA-Z0-9_.-]")
        }
    }

    static func put(_ path: String, _ text: String) throws {
        if FS.lstatMode(path) == S_IFREG {
            try FS.write(path, text)
        } else {
            try FS.atomicWrite(path, Array(text.utf8), mode: 0o644)
        }
    }
}
