import NIOCore
import NIOPosix

/// Raw bytes of a hijacked connection; replaces the HTTP handlers in the pipeline.
final class RawHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let highWater = 4 << 20

    private var context: ChannelHandlerContext?
    private var buffered = CircularBuffer<ByteBuffer>()
    private var bufferedBytes = 0
    private var eof: Bool
    private var closed = false
    private var readPending = false
    private var waiter: (promise: EventLoopPromise<ByteBuffer?>, token: CancelToken)?
    private let gone: OneShotSignal

    init(gone: OneShotSignal, inputClosed: Bool) {
        self.gone = gone
        self.eof = inputClosed
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The HTTP handler may have held back a read; ask for data ourselves. (A client
        // channel not yet connected reads when it becomes active.)
        if !eof && context.channel.isActive { context.read() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        closed = true
        wakeWaiter(nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard buffer.readableBytes > 0 else { return }
        if let waiter {
            self.waiter = nil
            waiter.promise.succeed(buffer)
        } else {
            buffered.append(buffer)
            bufferedBytes += buffer.readableBytes
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            eof = true
            if buffered.isEmpty { wakeWaiter(nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        eof = true
        gone.fire()
        if buffered.isEmpty { wakeWaiter(nil) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // e.g. connection reset: nothing more will come.
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if bufferedBytes < Self.highWater {
            context.read()
        } else {
            readPending = true
        }
    }

    private func wakeWaiter(_ value: ByteBuffer?) {
        if let waiter {
            self.waiter = nil
            waiter.promise.succeed(value)
        }
    }

    // MARK: operations, on the event loop

    func next(loop: EventLoop, token: CancelToken) -> EventLoopFuture<ByteBuffer?> {
        if let buffer = buffered.popFirst() {
            bufferedBytes -= buffer.readableBytes
            if readPending, bufferedBytes < Self.highWater, let context {
                readPending = false
                context.read()
            }
            return loop.makeSucceededFuture(buffer)
        }
        if eof || closed { return loop.makeSucceededFuture(nil) }
        if waiter != nil {
            return loop.makeFailedFuture(HTTPError.invalidState("concurrent reads of a raw stream"))
        }
        if token.isCancelled { return loop.makeFailedFuture(CancellationError()) }
        let promise = loop.makePromise(of: ByteBuffer?.self)
        waiter = (promise, token)
        if readPending, let context {
            readPending = false
            context.read()
        }
        return promise.futureResult
    }

    func cancelWait(token: CancelToken) {
        guard let waiter, waiter.token === token else { return }
        self.waiter = nil
        waiter.promise.fail(CancellationError())
    }

    func write(loop: EventLoop, bytes: [UInt8]) -> EventLoopFuture<Void> {
        guard let context, !closed else { return loop.makeFailedFuture(HTTPError.connectionClosed) }
        if bytes.isEmpty { return loop.makeSucceededVoidFuture() }
        return context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)))
            .flatMapErrorThrowing { _ in throw HTTPError.connectionClosed }
    }

    func write(loop: EventLoop, buffer: ByteBuffer) -> EventLoopFuture<Void> {
        guard let context, !closed else { return loop.makeFailedFuture(HTTPError.connectionClosed) }
        if buffer.readableBytes == 0 { return loop.makeSucceededVoidFuture() }
        return context.writeAndFlush(wrapOutboundOut(buffer))
            .flatMapErrorThrowing { _ in throw HTTPError.connectionClosed }
    }

    func closeWrite(loop: EventLoop) -> EventLoopFuture<Void> {
        guard let context, !closed else { return loop.makeSucceededVoidFuture() }
        let promise = loop.makePromise(of: Void.self)
        context.close(mode: .output, promise: promise)
        return promise.futureResult.recover { _ in }
    }

    func close(loop: EventLoop) -> EventLoopFuture<Void> {
        guard let context, !closed else { return loop.makeSucceededVoidFuture() }
        let promise = loop.makePromise(of: Void.self)
        context.close(mode: .all, promise: promise)
        return promise.futureResult.recover { _ in }
    }
}

/// The raw, bidirectional byte stream of a hijacked connection.
public final class RawStream: Sendable {
    private let loop: EventLoop
    private let handler: NIOLoopBound<RawHandler>
    private let gone: OneShotSignal

    init(loop: EventLoop, handler: NIOLoopBound<RawHandler>, gone: OneShotSignal) {
        self.loop = loop
        self.handler = handler
        self.gone = gone
    }

    /// The next bytes from the client; nil at EOF (the client half-closed or closed) or after `close()`.
    /// Cancelling the calling task makes it throw `CancellationError` (no bytes are lost).
    public func read() async throws -> [UInt8]? {
        let token = CancelToken()
        let handler = self.handler
        let loop = self.loop
        return try await withTaskCancellationHandler {
            let buffer = try await onLoop(loop) { handler.value.next(loop: loop, token: token) }
            return buffer.map { Array($0.readableBytesView) }
        } onCancel: {
            token.cancel()
            loop.execute { handler.value.cancelWait(token: token) }
        }
    }

    /// `read()` without the copy into an array.
    public func readBuffer() async throws -> ByteBuffer? {
        let token = CancelToken()
        let handler = self.handler
        let loop = self.loop
        return try await withTaskCancellationHandler {
            try await onLoop(loop) { handler.value.next(loop: loop, token: token) }
        } onCancel: {
            token.cancel()
            loop.execute { handler.value.cancelWait(token: token) }
        }
    }

    /// `write(_:)` of a buffer as it is.
    public func writeBuffer(_ buffer: ByteBuffer) async throws {
        let handler = self.handler
        let loop = self.loop
        try await onLoop(loop) { handler.value.write(loop: loop, buffer: buffer) }
    }

    /// Writes and flushes; returns once written to the socket. Throws `HTTPError.connectionClosed`.
    public func write(_ bytes: [UInt8]) async throws {
        let handler = self.handler
        let loop = self.loop
        try await onLoop(loop) { handler.value.write(loop: loop, bytes: bytes) }
    }

    /// Shuts down the write side (the client reads EOF); reading stays possible.
    public func closeWrite() async {
        let handler = self.handler
        let loop = self.loop
        try? await onLoop(loop) { handler.value.closeWrite(loop: loop) }
    }

    /// Closes the connection.
    public func close() async {
        let handler = self.handler
        let loop = self.loop
        try? await onLoop(loop) { handler.value.close(loop: loop) }
    }

    /// Returns when the connection is closed (or the calling task is cancelled).
    public func closed() async {
        await gone.wait()
    }
}

/// Runs `body` on `loop` and awaits its future; a loop that is shut down reads as a closed connection.
func onLoop<T: Sendable>(
    _ loop: EventLoop,
    _ body: @escaping @Sendable () -> EventLoopFuture<T>
) async throws -> T {
    let future: EventLoopFuture<T>
    if loop.inEventLoop {
        future = body()
    } else {
        future = loop.flatSubmit(body)
    }
    do {
        return try await future.get()
    } catch let error as HTTPError {
        throw error
    } catch let error as CancellationError {
        throw error
    } catch is EventLoopError {
        throw HTTPError.connectionClosed
    }
}

// MARK: client side

extension RawStream {
    /// A raw stream over a channel cryod opens itself (a unix or TLS connection to another
    /// cryod, one end of a socket pair). `setUp` (run on the channel's loop before it reads
    /// anything) may put handlers first, a TLS handler say; the raw handler goes last. It is
    /// in place before the first read, so no early byte is lost.
    public static func client(
        _ connect: (ClientBootstrap) -> EventLoopFuture<Channel>,
        setUp: @escaping @Sendable (Channel) throws -> Void = { _ in }
    ) async throws -> RawStream {
        let gone = OneShotSignal()
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            // Bulk streams (a migration's pages): reads of up to 1 MiB, not NIO's 64 KiB.
            .channelOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 65536, maximum: 1 << 20))
            .channelOption(ChannelOptions.socketOption(.so_sndbuf), value: 8 << 20)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try setUp(channel)
                    try channel.pipeline.syncOperations.addHandler(RawHandler(gone: gone, inputClosed: false))
                }
            }
        let channel = try await connect(bootstrap).get()
        channel.closeFuture.whenComplete { _ in gone.fire() }
        let loop = channel.eventLoop
        return try await loop.submit {
            let raw = try channel.pipeline.syncOperations.handler(type: RawHandler.self)
            return RawStream(loop: loop, handler: NIOLoopBound(raw, eventLoop: loop), gone: gone)
        }.get()
    }

    /// Connects to a unix socket (another cryod's API socket).
    public static func connect(unixPath: String) async throws -> RawStream {
        try await client { $0.connect(unixDomainSocketPath: unixPath) }
    }

    /// Takes over a connected stream socket descriptor (one end of a socket pair): it is
    /// closed with the stream.
    public static func adopt(socket fd: Int32) async throws -> RawStream {
        try await client { $0.withConnectedSocket(fd) }
    }
}
