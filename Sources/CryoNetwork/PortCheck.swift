import Glibc

/// Whether a published port can be had on the host: portmap only writes DNAT rules and never
/// binds, so a port some host process already serves would silently be stolen from it. Asking
/// the kernel (bind, then close) is the exact test.
public enum PortCheck {
    public static func ensureFree(_ p: PortMapping) throws {
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
        addr.sin_port = in_port_t(UInt16(p.hostPort).bigEndian)
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
            throw NetworkError.portInUse(port: p.hostPort, proto: p.protocol, hostIP: p.hostIP, reason: why)
        }
    }
}
