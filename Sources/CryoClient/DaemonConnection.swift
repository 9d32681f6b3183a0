import CryoTLS
import Glibc

/// A blocking connection to the daemon, with a read buffer: a unix stream socket, or TCP
/// with mutual TLS (CryoTLS's blocking wrapper). Used by one thread at a time, except that
/// after a hijack one thread may write while another reads.
// @unchecked: the read buffer belongs to the one reading thread; writes go straight to the socket.
public final class DaemonConnection: @unchecked Sendable {
    enum Transport {
        case unix(fd: Int32)
        case tls(BlockingTLSConnection)
    }
    let transport: Transport
    /// Bytes read from the socket but not consumed yet.
    var buffer: [UInt8] = []
    var closed = false

    /// TCP with mutual TLS: fails with what went wrong in the handshake (unknown CA, a
    /// certificate not valid for `host`, no client certificate accepted...).
    public init(tlsHost host: String, port: Int, identity: TLSIdentity, display: String) throws {
        do {
            transport = .tls(try BlockingTLSConnection(host: host, port: port, identity: identity))
        } catch let e as TLSError where e.kind != .connect {
            // cryod answered, but TLS failed: "Is cryod running?" would mislead.
            throw ClientError.io("error during connect to \(display): \(e)")
        } catch {
            throw ClientError.cannotConnect(host: display, reason: "\(error)")
        }
    }

    public init(path: String) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ClientError.cannotConnect(host: "unix://" + path, reason: "socket: \(errnoText())") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            Glibc.close(fd)
            throw ClientError.cannotConnect(host: "unix://" + path, reason: "socket path longer than \(MemoryLayout.size(ofValue: addr.sun_path) - 1) bytes")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
        }
        let r = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if r != 0 {
            let text = errnoText()
            Glibc.close(fd)
            throw ClientError.cannotConnect(host: "unix://" + path, reason: "connect: \(text)")
        }
        self.transport = .unix(fd: fd)
    }

    deinit {
        if !closed { close() }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        switch transport {
        case .unix(let fd): Glibc.close(fd)
        case .tls(let c): c.close()
        }
    }

    public func writeAll(_ bytes: [UInt8]) throws {
        let fd: Int32
        switch transport {
        case .unix(let f): fd = f
        case .tls(let c):
            do { try c.write(bytes) } catch { throw ClientError.io("write to daemon: \(error)") }
            return
        }
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { p in send(fd, p.baseAddress! + off, p.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ClientError.io("write to daemon: \(errnoText())")
            }
            off += n
        }
    }

    /// Shuts down the write side (the daemon sees EOF on our stdin).
    public func closeWrite() {
        switch transport {
        case .unix(let fd): _ = shutdown(fd, Int32(SHUT_WR))
        case .tls(let c): c.closeWrite()
        }
    }

    /// One read from the transport (at most 64 KiB from a socket); nil at EOF.
    func receive() throws -> [UInt8]? {
        switch transport {
        case .tls(let c):
            do { return try c.read() } catch { throw ClientError.io("read from daemon: \(error)") }
        case .unix(let fd):
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n < 0 {
                    if errno == EINTR { continue }
                    if errno == ECONNRESET { return nil }
                    throw ClientError.io("read from daemon: \(errnoText())")
                }
                if n == 0 { return nil }
                return Array(buf[0..<n])
            }
        }
    }

    /// Reads whatever the socket has (at most 64 KiB); nil at EOF.
    public func readSome() throws -> [UInt8]? {
        if !buffer.isEmpty {
            let b = buffer
            buffer = []
            return b
        }
        return try receive()
    }

    /// Reads until a whole response head is buffered, and returns it; the bytes after it
    /// stay buffered.
    public func readHead() throws -> HTTPResponseHead {
        while true {
            if let (head, used) = try HTTPResponseHead.parse(buffer) {
                buffer.removeFirst(used)
                return head
            }
            guard let more = try receive() else {
                throw ClientError.io("the daemon closed the connection before answering")
            }
            buffer += more
        }
    }

    /// Takes the bytes buffered after the head (a hijacked stream's first bytes).
    public func takeBuffered() -> [UInt8] {
        let b = buffer
        buffer = []
        return b
    }
}

func errnoText(_ e: Int32 = errno) -> String {
    String(cString: strerror(e))
}
