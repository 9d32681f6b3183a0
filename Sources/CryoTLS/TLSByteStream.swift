import NIOCore
import NIOPosix
import NIOSSL

/// A mutual-TLS client connection as a byte stream (cryod A → cryod B, and the `cryo` CLI
/// through `BlockingTLSConnection`). Same shape as CryoHTTP's `RawStream`: one reader at a
/// time, writes complete once flushed, at most ~1 MiB read ahead of the reader.
public final class TLSByteStream: Sendable {
    let channel: Channel
    private let handler: NIOLoopBound<StreamHandler>
    /// "host:port", for messages.
    public let peer: String

    init(channel: Channel, handler: NIOLoopBound<StreamHandler>, peer: String) {
        self.channel = channel
        self.handler = handler
        self.peer = peer
    }

    /// Connects, then completes the handshake: this identity's certificate is presented,
    /// the server's chain is verified against the identity's CA and its names against
    /// `host` (a DNS name, or an IP address checked against the IP SANs). A peer unreachable
    /// for `liveness` fails the connection (`TCPLiveness`).
    public static func connect(
        host: String,
        port: Int,
        identity: TLSIdentity,
        liveness: TCPLiveness = .default,
        eventLoopGroup: MultiThreadedEventLoopGroup = .singleton
    ) async throws -> TLSByteStream {
        try await connectFuture(host: host, port: port, identity: identity, liveness: liveness, group: eventLoopGroup).get()
    }

    static let connectTimeout = TimeAmount.seconds(30)
    static let handshakeTimeout = TimeAmount.seconds(30)

    static func connectFuture(host: String, port: Int, identity: TLSIdentity, liveness: TCPLiveness = .default,
                              group: EventLoopGroup) -> EventLoopFuture<TLSByteStream> {
        let loop = group.next()
        let peer = (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
        let sslContext: NIOSSLContext
        do {
            sslContext = try identity.makeClientContext()
        } catch {
            return loop.makeFailedFuture(error)
        }
        // An IP address is not sent as SNI; NIOSSL then checks the certificate's IP SANs
        // against the address connected to.
        let serverHostname = CertificateAuthority.ipAddressBytes(host) == nil ? host : nil
        let handshake = loop.makePromise(of: Void.self)
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(connectTimeout)
            // No remote half-closure on this side: with it, NIOSSL (2.37) never finishes a
            // close we started once the server's close_notify arrives, and every close
            // waits out the shutdown timeout. The server's half-close reads as EOF all the same.
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: false)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try liveness.apply(to: channel)
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverHostname))
                    try sync.addHandler(StreamHandler(handshake: handshake, peer: peer, trusted: identity.trustedCAs))
                }
            }
        return bootstrap.connect(host: host, port: port)
            .flatMapErrorThrowing { error -> Channel in
                let e = TLSError("cannot connect to \(peer): \(error)", kind: .connect)
                handshake.fail(e)
                throw e
            }
            .flatMap { channel -> EventLoopFuture<TLSByteStream> in
                let timeout = loop.scheduleTask(in: handshakeTimeout) {
                    handshake.fail(TLSError("TLS handshake with \(peer) failed: no answer in \(handshakeTimeout.nanoseconds / 1_000_000_000) seconds", kind: .handshake))
                }
                return handshake.futureResult
                    .flatMapErrorThrowing { error in
                        channel.close(promise: nil)
                        throw error
                    }
                    .flatMapThrowing { () -> TLSByteStream in
                        timeout.cancel()
                        let h = try channel.pipeline.syncOperations.handler(type: StreamHandler.self)
                        return TLSByteStream(channel: channel, handler: NIOLoopBound(h, eventLoop: loop), peer: peer)
                    }
            }
    }

    // MARK: futures (the blocking wrapper waits on these)

    func readFuture() -> EventLoopFuture<[UInt8]?> {
        let handler = self.handler
        let loop = channel.eventLoop
        return loop.flatSubmit { handler.value.next(loop: loop) }.map { $0.map { Array($0.readableBytesView) } }
    }

    func writeFuture(_ bytes: [UInt8]) -> EventLoopFuture<Void> {
        let handler = self.handler
        let loop = channel.eventLoop
        return loop.flatSubmit { handler.value.write(loop: loop, bytes: bytes) }
    }

    func closeWriteFuture() -> EventLoopFuture<Void> {
        let handler = self.handler
        let loop = channel.eventLoop
        return loop.flatSubmit { handler.value.closeWrite(loop: loop) }
    }

    func closeFuture() -> EventLoopFuture<Void> {
        let handler = self.handler
        let loop = channel.eventLoop
        return loop.flatSubmit { handler.value.close(loop: loop) }
    }

    // MARK: async API

    /// The next bytes from the server; nil at EOF (the server closed or half-closed: after
    /// that, writes fail) or
    /// after `close()`. Cancelling the calling task makes it throw `CancellationError`.
    public func read() async throws -> [UInt8]? {
        let handler = self.handler
        let loop = channel.eventLoop
        return try await withTaskCancellationHandler {
            try await readFuture().get()
        } onCancel: {
            loop.execute { handler.value.cancelWait() }
        }
    }

    /// Writes and flushes; returns once written to the socket.
    public func write(_ bytes: [UInt8]) async throws {
        try await writeFuture(bytes).get()
    }

    /// `read()` without the copy into an array (a migration's page relay: 1 GiB passes here).
    public func readBuffer() async throws -> ByteBuffer? {
        let handler = self.handler
        let loop = channel.eventLoop
        return try await withTaskCancellationHandler {
            try await loop.flatSubmit { handler.value.next(loop: loop) }.get()
        } onCancel: {
            loop.execute { handler.value.cancelWait() }
        }
    }

    /// `write(_:)` of a buffer as it is.
    public func writeBuffer(_ buffer: ByteBuffer) async throws {
        let handler = self.handler
        let loop = channel.eventLoop
        try await loop.flatSubmit { handler.value.write(loop: loop, buffer: buffer) }.get()
    }

    /// Sends close_notify and shuts down the write side; reading stays possible.
    public func closeWrite() async {
        try? await closeWriteFuture().get()
    }

    /// Closes the connection.
    public func close() async {
        try? await closeFuture().get()
    }
}
