import NIOCore
import NIOPosix

/// `TLSByteStream` for blocking callers (the `cryo` CLI's client): each call waits on the
/// event loop's answer. One thread may read while another writes. Never call it from an
/// event loop thread.
public final class BlockingTLSConnection: Sendable {
    let stream: TLSByteStream

    public init(host: String, port: Int, identity: TLSIdentity, eventLoopGroup: MultiThreadedEventLoopGroup = .singleton) throws {
        stream = try TLSByteStream.connectFuture(host: host, port: port, identity: identity, group: eventLoopGroup).wait()
    }

    /// Bytes from the server; nil at EOF.
    public func read() throws -> [UInt8]? { try stream.readFuture().wait() }

    /// Returns once the bytes are flushed to the socket.
    public func write(_ bytes: [UInt8]) throws { try stream.writeFuture(bytes).wait() }

    public func closeWrite() { try? stream.closeWriteFuture().wait() }

    public func close() { try? stream.closeFuture().wait() }
}
