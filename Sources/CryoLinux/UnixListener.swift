import CShim

import Glibc

/// A listening unix socket (mode 0600). `receiveFD` takes one connection carrying an fd:
/// runc's console-socket protocol.
public struct UnixListener: Sendable {
    public let fd: Int32
    public let path: String

    public init(path: String, backlog: Int32 = 4) throws {
        unlink(path)
        let fd = try sys(socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0), "socket", path)
        do {
            try Self.withAddress(path) { addr, len in try sys(bind(fd, addr, len), "bind", path) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        chmod(path, 0o600)
        if listen(fd, backlog) != 0 { let e = SyscallError("listen", path); Glibc.close(fd); throw e }
        self.fd = fd
        self.path = path
    }

    /// `path` as a socket address, for bind or connect.
    @discardableResult
    public static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) throws -> T {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw CryoFailure(.invalidArgument, "socket path \(path) is too long (\(bytes.count) bytes; unix sockets allow 107)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
        }
        return try withUnsafePointer(to: &addr) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    public func receiveFD(timeoutMs: Int32) throws -> Int32 {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, timeoutMs) > 0 else { throw CryoFailure(.internal, "no terminal received on \(path) within \(timeoutMs / 1000) s") }
        let conn = try sys(accept(fd, nil, nil), "accept", path)
        _ = fcntl(conn, F_SETFD, FD_CLOEXEC)
        defer { Glibc.close(conn) }
        var buf = [UInt8](repeating: 0, count: 256)
        var received: Int32 = -1
        let n = buf.withUnsafeMutableBytes { cryo_recv_with_fd(conn, $0.baseAddress, $0.count, &received) }
        guard n >= 0, received >= 0 else { throw SyscallError("recvmsg(console master)", path) }
        return received
    }

    public func close() {
        Glibc.close(fd)
        unlink(path)
    }
}
