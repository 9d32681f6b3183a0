import NIOCore
import NIOSSL
import NIOTLS

/// The end of a client TLS connection's pipeline: hands decrypted bytes to one reader at a
/// time, holds back reads from the socket while 1 MiB waits unread (backpressure), and
/// reports the handshake's outcome.
final class StreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let highWater = 1 << 20

    private var context: ChannelHandlerContext?
    private var buffered = CircularBuffer<ByteBuffer>()
    private var bufferedBytes = 0
    private var eof = false
    private var closed = false
    private var readPending = false
    private var failure: Error?
    private var waiter: EventLoopPromise<ByteBuffer?>?
    let handshake: EventLoopPromise<Void>
    private var handshakeSettled = false
    private let peer: String
    private let trusted: [NIOSSLCertificate]

    init(handshake: EventLoopPromise<Void>, peer: String, trusted: [NIOSSLCertificate]) {
        self.handshake = handshake
        self.peer = peer
        self.trusted = trusted
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

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
            waiter.succeed(buffer)
        } else {
            buffered.append(buffer)
            bufferedBytes += buffer.readableBytes
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            settleHandshake(nil)
        } else if let event = event as? ChannelEvent, event == .inputClosed {
            eof = true
            if buffered.isEmpty { wakeWaiter(nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        eof = true
        settleHandshake(TLSError("TLS handshake with \(peer) failed: the server closed the connection", kind: .handshake))
        if buffered.isEmpty { wakeWaiter(nil) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Before the handshake completes, this is why it failed; after, the stream is over
        // (an unclean shutdown reads as EOF, anything else as an error for the reader).
        if !handshakeSettled {
            let why = PeerCertificateDiagnosis.describe(error, channel: context.channel, trusted: trusted)
            settleHandshake(TLSError("TLS handshake with \(peer) failed: \(why)", kind: .handshake, alert: TLSAlert.of(error)))
        }
        if case .uncleanShutdown = error as? NIOSSLError {
            eof = true
        } else if failure == nil {
            failure = TLSError("TLS connection to \(peer): \(TLSErrorText.describe(error))", kind: .connection, alert: TLSAlert.of(error))
        }
        if buffered.isEmpty {
            if let waiter, let failure {
                self.waiter = nil
                waiter.fail(failure)
            } else {
                wakeWaiter(nil)
            }
        }
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if bufferedBytes < Self.highWater {
            context.read()
        } else {
            readPending = true
        }
    }

    private func settleHandshake(_ error: Error?) {
        guard !handshakeSettled else { return }
        handshakeSettled = true
        if let error { handshake.fail(error) } else { handshake.succeed(()) }
    }

    private func wakeWaiter(_ value: ByteBuffer?) {
        if let waiter {
            self.waiter = nil
            waiter.succeed(value)
        }
    }

    // MARK: operations, on the event loop

    func next(loop: EventLoop) -> EventLoopFuture<ByteBuffer?> {
        if let buffer = buffered.popFirst() {
            bufferedBytes -= buffer.readableBytes
            if readPending, bufferedBytes < Self.highWater, let context {
                readPending = false
                context.read()
            }
            return loop.makeSucceededFuture(buffer)
        }
        if let failure { return loop.makeFailedFuture(failure) }
        if eof || closed { return loop.makeSucceededFuture(nil) }
        if waiter != nil {
            return loop.makeFailedFuture(TLSError("concurrent reads of a TLS stream"))
        }
        let promise = loop.makePromise(of: ByteBuffer?.self)
        waiter = promise
        if readPending, let context {
            readPending = false
            context.read()
        }
        return promise.futureResult
    }

    func cancelWait() {
        if let waiter {
            self.waiter = nil
            waiter.fail(CancellationError())
        }
    }

    func write(loop: EventLoop, bytes: [UInt8]) -> EventLoopFuture<Void> {
        guard let context, !closed else { return loop.makeFailedFuture(TLSError("TLS connection to \(peer) is closed", kind: .closed)) }
        if bytes.isEmpty { return loop.makeSucceededVoidFuture() }
        let peer = self.peer
        return context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)))
            .flatMapErrorThrowing { error in throw TLSError("write to \(peer): \(TLSErrorText.describe(error))", kind: .connection, alert: TLSAlert.of(error)) }
    }

    func write(loop: EventLoop, buffer: ByteBuffer) -> EventLoopFuture<Void> {
        guard let context, !closed else { return loop.makeFailedFuture(TLSError("TLS connection to \(peer) is closed", kind: .closed)) }
        if buffer.readableBytes == 0 { return loop.makeSucceededVoidFuture() }
        let peer = self.peer
        return context.writeAndFlush(wrapOutboundOut(buffer))
            .flatMapErrorThrowing { error in throw TLSError("write to \(peer): \(TLSErrorText.describe(error))", kind: .connection, alert: TLSAlert.of(error)) }
    }

    func closeWrite(loop: EventLoop) -> EventLoopFuture<Void> {
        guard let context, !closed else { return loop.makeSucceededVoidFuture() }
        let promise = loop.makePromise(of: Void.self)
        // NIOSSL sends close_notify, then shuts the socket's write side.
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
