import CShim
import Glibc

/// A SOCK_SEQPACKET socket: one message per datagram, optionally with an fd.
public struct PacketSocket: Sendable {
    public let fd: Int32
    public init(fd: Int32) { self.fd = fd }

    /// A connected pair; both ends close-on-exec.
    public static func pair() throws -> (PacketSocket, PacketSocket) {
        var fds: [Int32] = [0, 0]
        try sys(socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds), "socketpair")
        return (PacketSocket(fd: fds[0]), PacketSocket(fd: fds[1]))
    }

    public func send(_ bytes: [UInt8], fd passFD: Int32 = -1) throws {
        let r = bytes.withUnsafeBytes { p in cryo_send_fd(fd, passFD, p.baseAddress, p.count) }
        if r < 0 { throw SyscallError("sendmsg", "fd \(fd)") }
    }

    /// Receives one message; returns nil at EOF (peer closed).
    public func receive() throws -> (bytes: [UInt8], fd: Int32)? {
        let size = cryo_peek_size(fd)
        if size < 0 { throw SyscallError("recv(MSG_PEEK)", "fd \(fd)") }
        var buf = [UInt8](repeating: 0, count: max(Int(size), 1))
        var got: Int32 = -1
        let n = buf.withUnsafeMutableBytes { p in cryo_recv_with_fd(fd, p.baseAddress, p.count, &got) }
        if n < 0 { throw SyscallError("recvmsg", "fd \(fd)") }
        if n == 0 && size == 0 { return nil }
        return (Array(buf[0..<n]), got)
    }

    public func close() { _ = Glibc.close(fd) }
}

/// Connects to a unix stream socket path (console sockets).
public func connectUnixStream(path: String) throws -> Int32 {
    let fd = try sys(socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0), "socket")
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
        close(fd)
        throw CryoFailure(.invalidArgument, "socket path too long: \(path)")
    }
    withUnsafeMutableBytes(of: &addr.sun_path) { p in
        for (i, b) in bytes.enumerated() { p[i] = b }
    }
    let r = withUnsafePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    if r != 0 {
        let e = errno
        close(fd)
        throw SyscallError("connect", path, errno: e)
    }
    return fd
}
