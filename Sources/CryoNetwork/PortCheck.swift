import Glibc

/// Whether a published port can be had on the host: portmap only writes DNAT rules and never
/// binds, so a port some host process already serves would silently be stolen from it. Asking
/// the kernel (bind, then close) is the exact test.
public enum PortCheck {
    /// A free host port for `p` (whose hostPort is 0), as docker picks one for `-p 80` and
    /// `-P`: the kernel's choice for a bind to port 0, from the ephemeral range
    /// (net.ipv4.ip_local_port_range), skipping ports in `taken` (published by other
    /// containers: portmap's DNAT rules hold no socket the kernel would know of).
    public static func pickFree(_ p: PortMapping, taken: Set<Int>) throws -> Int {
        for _ in 0..<64 {
            let port = try bound(p, port: 0)
            if !taken.contains(port) { return port }
        }
        throw NetworkError.portInUse(port: 0, proto: p.protocol, hostIP: p.hostIP,
                                     reason: "no free host port found for container port \(p.containerPort)")
    }

    public static func ensureFree(_ p: PortMapping) throws {
        _ = try bound(p, port: p.hostPort)
    }

    /// Binds a socket of p's protocol on p's host address and `port`, returns the port it
    /// got and closes it.
    static func bound(_ p: PortMapping, port: Int) throws -> Int {
        let type = p.protocol == "udp" ? SOCK_DGRAM : SOCK_STREAM
        let fd = socket(AF_INET, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw NetworkError.portInUse(port: p.hostPort, proto: p.protocol, hostIP: p.hostIP, reason: "socket: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        if type == SOCK_STREAM {
            // A connection in TIME_WAIT does not make the port unavailable to a listener.
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        let host = p.hostIP.isEmpty ? IPv4Address(0) : (IPv4Address(p.hostIP) ?? IPv4Address(0))
        addr.sin_addr.s_addr = host.value.bigEndian
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 {
            let e = errno
            let why: String
            switch e {
            case EADDRINUSE: why = "already in use on the host"
            case EADDRNOTAVAIL: why = "\(p.hostIP) is not an address of this host"
            default: why = "bind: \(String(cString: strerror(e)))"
            }
            throw NetworkError.portInUse(port: port, proto: p.protocol, hostIP: p.hostIP, reason: why)
        }
        var got = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let grc = withUnsafeMutablePointer(to: &got) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard grc == 0 else {
            throw NetworkError.portInUse(port: port, proto: p.protocol, hostIP: p.hostIP, reason: "getsockname: \(String(cString: strerror(errno)))")
        }
        return Int(UInt16(bigEndian: got.sin_port))
    }
}
