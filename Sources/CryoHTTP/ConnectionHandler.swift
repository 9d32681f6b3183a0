import NIOCore
import NIOHTTP1

/// What every connection needs from the server.
struct ServerContext: Sendable {
    let defaultHeaders: [(String, String)]
    let handler: @Sendable (HTTPExchange) async -> Void
    let connections: ConnectionTracker
}

/// Per-exchange state; only touched on the connection's event loop.
final class ExchangeState {
    enum Response { case none, streaming, complete, hijacked }

    let id: Int
    let version: HTTPVersion
    let isHead: Bool
    let isUpgradeRequest: Bool
    let contentLength: Int?
    var keepAlive: Bool

    var body = CircularBuffer<ByteBuffer>()
    var bodyBytes = 0
    var requestEnded = false
    var bodyWaiter: (promise: EventLoopPromise<ByteBuffer?>, token: CancelToken)?
    var bodyError: HTTPError?
    /// Body bytes arriving from now on are thrown away (response done, or hijack waiting for the end).
    var discarding = false
    var discarded = 0
    var response = Response.none
    /// Set while `hijack` waits for the rest of the request body.
    var hijackContinuation: (() -> Void)?

    init(id: Int, head: HTTPRequestHead) {
        self.id = id
        self.version = head.version
        self.isHead = head.method == .HEAD
        self.keepAlive = head.isKeepAlive
        let connection = head.headers[canonicalForm: "connection"].map { $0.lowercased() }
        self.isUpgradeRequest = connection.contains("upgrade") && head.headers.contains(name: "upgrade")
        self.contentLength = head.headers.first(name: "content-length").flatMap { Int($0) }
    }
}

/// The HTTP side of one connection: turns decoded request parts into `HTTPExchange`s, one at a time,
/// writes their responses, and performs the hijack.
///
/// Pipeline: ByteToMessageHandler(HTTPRequestDecoder) → HTTPResponseEncoder → this.
/// Backpressure: `read()` is held back while too many body bytes (or queued later requests) are buffered.
final class HTTPConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    static let highWater = 1 << 20
    /// After a complete response, at most this many unread request body bytes are discarded to keep
    /// the connection alive; a larger rest closes the connection.
    static let discardLimit = 4 << 20

    private let server: ServerContext
    private let loop: EventLoop
    private let decoder: ByteToMessageHandler<HTTPRequestDecoder>
    private let encoder: HTTPResponseEncoder
    private var context: ChannelHandlerContext?

    private var current: ExchangeState?
    private var queued = CircularBuffer<HTTPServerRequestPart>()
    private var queuedBytes = 0
    private var nextID = 0
    private var readPending = false
    private var inputClosed = false
    private var closed = false
    private var hijacked = false
    /// A protocol error was answered; ignore everything until the connection is closed.
    private var dead = false
    /// Fired when the client goes away (EOF or close); shared with the exchanges and the raw stream.
    let gone = OneShotSignal()

    init(
        server: ServerContext,
        loop: EventLoop,
        decoder: ByteToMessageHandler<HTTPRequestDecoder>,
        encoder: HTTPResponseEncoder
    ) {
        self.server = server
        self.loop = loop
        self.decoder = decoder
        self.encoder = encoder
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        becameIdle()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelIdleTimer()
        self.context = nil
    }

    // MARK: idle connections

    /// Closes the connection if it is still idle when it fires.
    private var idleTimer: Scheduled<Void>?

    /// Between requests, or reading the next request head: the server may close the
    /// connection after its idle timeout, or to make room for a new one.
    private func becameIdle() {
        guard let context, !hijacked, !closed else { return }
        server.connections.setIdle(context.channel, true)
        cancelIdleTimer()
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(in: server.connections.limits.idleTimeout) {
            bound.value.idleTimeoutFired()
        }
    }

    /// A request head arrived (or the stream was hijacked): no timeout while it is served.
    private func becameBusy() {
        cancelIdleTimer()
        if let context { server.connections.setIdle(context.channel, false) }
    }

    private func cancelIdleTimer() {
        idleTimer?.cancel()
        idleTimer = nil
    }

    private func idleTimeoutFired() {
        idleTimer = nil
        guard current == nil, queued.isEmpty, !hijacked else { return }
        closeNow()
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if dead { return }
        dispatch(unwrapInboundIn(data))
    }

    private func dispatch(_ part: HTTPServerRequestPart) {
        if let ex = current, !ex.requestEnded {
            switch part {
            case .head:
                // Cannot happen with a well-behaved decoder.
                closeNow()
            case .body(let buffer):
                receiveBody(ex, buffer)
            case .end:
                receiveEnd(ex)
            }
            return
        }
        if current != nil || !queued.isEmpty {
            // A later request (pipelined) while one is in progress: keep it until its turn.
            queued.append(part)
            if case .body(let b) = part { queuedBytes += b.readableBytes } else { queuedBytes += 256 }
            return
        }
        guard case .head(let head) = part else {
            closeNow()
            return
        }
        startExchange(head)
    }

    private func receiveBody(_ ex: ExchangeState, _ buffer: ByteBuffer) {
        if ex.discarding {
            ex.discarded += buffer.readableBytes
            if ex.discarded > Self.discardLimit && ex.hijackContinuation == nil && !lingering { closeNow() }
            return
        }
        if let waiter = ex.bodyWaiter {
            ex.bodyWaiter = nil
            waiter.promise.succeed(buffer)
        } else {
            ex.body.append(buffer)
            ex.bodyBytes += buffer.readableBytes
        }
    }

    private func receiveEnd(_ ex: ExchangeState) {
        ex.requestEnded = true
        if let waiter = ex.bodyWaiter {
            ex.bodyWaiter = nil
            waiter.promise.succeed(nil)
        }
        if let hijack = ex.hijackContinuation {
            ex.hijackContinuation = nil
            hijack()
            return
        }
        if ex.response == .complete {
            advance()
        }
    }

    private func startExchange(_ head: HTTPRequestHead) {
        guard let context else { return }
        nextID += 1
        let ex = ExchangeState(id: nextID, head: head)
        if inputClosed { ex.keepAlive = false }
        current = ex
        becameBusy()
        let request = HTTPRequest(
            method: head.method.rawValue,
            uri: head.uri,
            headers: head.headers.map { (name: $0.name, value: $0.value) },
            version: (Int(head.version.major), Int(head.version.minor))
        )
        let exchange = HTTPExchange(
            request: request,
            id: ex.id,
            loop: context.eventLoop,
            handler: NIOLoopBound(self, eventLoop: context.eventLoop),
            gone: gone
        )
        let userHandler = server.handler
        let loop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        let id = ex.id
        Task {
            await userHandler(exchange)
            loop.execute { bound.value.handlerReturned(id) }
        }
    }

    /// The current exchange's response is complete and its request fully read: move on to the next.
    private func advance() {
        guard let ex = current else { return }
        current = nil
        if !ex.keepAlive || inputClosed {
            return  // closed once the response is written (see finishResponse)
        }
        let parts = queued
        queued = []
        queuedBytes = 0
        for part in parts { dispatch(part) }
        if current == nil { becameIdle() }
        resumeReadingIfPossible()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            inputClosed = true
            gone.fire()
            if lingering {
                closeNow()
                return
            }
            if let ex = current {
                if ex.response == .none { ex.keepAlive = false }
                if !ex.requestEnded {
                    failBody(ex, .malformedBody("connection closed before the request body ended"))
                    if let hijack = ex.hijackContinuation {
                        ex.hijackContinuation = nil
                        hijack()
                    }
                }
            } else {
                closeNow()
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        cancelIdleTimer()
        gone.fire()
        if let ex = current {
            failBody(ex, .connectionClosed)
            if let hijack = ex.hijackContinuation {
                ex.hijackContinuation = nil
                hijack()
            }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is HTTPParserError {
            if current == nil {
                // Bad request head: answer 400 and close.
                var headers = HTTPHeaders(server.defaultHeaders)
                let body = Array(#"{"message":"bad request"}"#.utf8)
                headers.add(name: "Content-Type", value: "application/json")
                headers.add(name: "Content-Length", value: String(body.count))
                headers.add(name: "Connection", value: "close")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
                let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.closeNow() }
                dead = true
                return
            }
            if let ex = current {
                // A broken body (e.g. a bad chunk size): nothing more is read; the exchange
                // is answered 400 unless its answer has begun, then the connection closes.
                dead = true
                ex.keepAlive = false
                failBody(ex, .malformedBody("\(error)"))
                if ex.response == .none && ex.hijackContinuation == nil {
                    let body = Array(#"{"message":"malformed request body: \#(error)"}"#.utf8)
                    _ = respond(ex.id, status: 400, headers: [("Content-Type", "application/json")], body: body)
                    return
                }
            }
        }
        closeNow()
    }

    private func failBody(_ ex: ExchangeState, _ error: HTTPError) {
        if ex.bodyError == nil { ex.bodyError = error }
        if let waiter = ex.bodyWaiter {
            ex.bodyWaiter = nil
            waiter.promise.fail(error)
        }
    }

    private func closeNow() {
        guard let context, !closed else { return }
        context.close(promise: nil)
    }

    // MARK: lingering close

    /// The longest a client may go on sending a body nobody reads after its answer.
    static let lingerLimit = TimeAmount.seconds(10)
    /// Output is shut; input is read and thrown away until the client closes, or for at
    /// most `lingerLimit`.
    private var lingering = false

    private func linger() {
        guard let context, !closed, !lingering else { return }
        lingering = true
        context.close(mode: .output, promise: nil)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: min(Self.lingerLimit, server.connections.limits.idleTimeout)) {
            bound.value.closeNow()
        }
        resumeReadingIfPossible()
    }

    // MARK: outbound / backpressure

    func read(context: ChannelHandlerContext) {
        if shouldRead {
            context.read()
        } else {
            readPending = true
        }
    }

    private var shouldRead: Bool {
        if hijacked { return false }
        let buffered = (current?.bodyBytes ?? 0) + queuedBytes
        return buffered < Self.highWater && queued.count < 128
    }

    private func resumeReadingIfPossible() {
        guard readPending, shouldRead, let context else { return }
        readPending = false
        context.read()
    }

    // MARK: exchange operations (called on the event loop via HTTPExchange)

    private func exchange(_ id: Int) throws -> ExchangeState {
        guard let ex = current, ex.id == id else {
            throw HTTPError.invalidState("the exchange is over")
        }
        return ex
    }

    func nextBodyChunk(_ id: Int, token: CancelToken) -> EventLoopFuture<ByteBuffer?> {
        guard let context else { return failed(HTTPError.connectionClosed) }
        let loop = context.eventLoop
        let ex: ExchangeState
        do { ex = try exchange(id) } catch { return loop.makeFailedFuture(error) }
        if ex.discarding || ex.response == .complete || ex.response == .hijacked {
            return loop.makeFailedFuture(HTTPError.invalidState("the request body is no longer available"))
        }
        if let buffer = ex.body.popFirst() {
            ex.bodyBytes -= buffer.readableBytes
            resumeReadingIfPossible()
            return loop.makeSucceededFuture(buffer)
        }
        if ex.requestEnded { return loop.makeSucceededFuture(nil) }
        if let error = ex.bodyError { return loop.makeFailedFuture(error) }
        if closed { return loop.makeFailedFuture(HTTPError.connectionClosed) }
        if ex.bodyWaiter != nil {
            return loop.makeFailedFuture(HTTPError.invalidState("concurrent reads of the request body"))
        }
        if token.isCancelled { return loop.makeFailedFuture(CancellationError()) }
        let promise = loop.makePromise(of: ByteBuffer?.self)
        ex.bodyWaiter = (promise, token)
        resumeReadingIfPossible()
        return promise.futureResult
    }

    func cancelBodyWait(_ id: Int, token: CancelToken) {
        guard let ex = current, ex.id == id, let waiter = ex.bodyWaiter, waiter.token === token else { return }
        ex.bodyWaiter = nil
        waiter.promise.fail(CancellationError())
    }

    /// Used once the handler left the pipeline (connection torn down, or hijacked).
    private func failed<T>(_ error: Error) -> EventLoopFuture<T> {
        loop.makeFailedFuture(error)
    }

    private func responseHeaders(_ ex: ExchangeState, _ extra: [(String, String)]) -> HTTPHeaders {
        var headers = HTTPHeaders(server.defaultHeaders)
        for (name, value) in extra {
            let lower = name.lowercased()
            if lower == "content-length" || lower == "transfer-encoding" { continue }
            if lower == "connection" {
                if value.lowercased().contains("close") { ex.keepAlive = false }
                continue
            }
            headers.replaceOrAdd(name: name, value: value)
        }
        if !ex.requestEnded {
            // The handler answers before the whole body arrived: keep the connection only if the rest
            // is known to be small enough to read and throw away.
            if let length = ex.contentLength, length <= Self.discardLimit {
                // ok
            } else {
                ex.keepAlive = false
            }
        }
        if ex.isUpgradeRequest {
            // The decoder stops parsing after an upgrade request; without a hijack the connection
            // cannot carry another request.
            ex.keepAlive = false
        }
        if inputClosed { ex.keepAlive = false }
        if !ex.keepAlive {
            headers.add(name: "Connection", value: "close")
        } else if ex.version.major == 1 && ex.version.minor == 0 {
            headers.add(name: "Connection", value: "keep-alive")
        }
        return headers
    }

    private static func responseStatus(_ code: Int) -> HTTPResponseStatus {
        HTTPResponseStatus(statusCode: code)
    }

    func respond(_ id: Int, status: Int, headers extra: [(String, String)], body: [UInt8]) -> EventLoopFuture<Void> {
        guard let context else { return failed(HTTPError.connectionClosed) }
        let ex: ExchangeState
        do { ex = try exchange(id) } catch { return context.eventLoop.makeFailedFuture(error) }
        guard ex.response == .none else {
            return context.eventLoop.makeFailedFuture(HTTPError.invalidState("a response was already started"))
        }
        if closed { return context.eventLoop.makeFailedFuture(HTTPError.connectionClosed) }
        var headers = responseHeaders(ex, extra)
        headers.add(name: "Content-Length", value: String(body.count))
        ex.response = .complete
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: ex.version, status: Self.responseStatus(status), headers: headers))),
            promise: nil
        )
        if !ex.isHead && !body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        responseCompleted(ex, written: done)
        return mapWriteError(done)
    }

    func startStream(_ id: Int, status: Int, headers extra: [(String, String)]) -> EventLoopFuture<Void> {
        guard let context else { return failed(HTTPError.connectionClosed) }
        let ex: ExchangeState
        do { ex = try exchange(id) } catch { return context.eventLoop.makeFailedFuture(error) }
        guard ex.response == .none else {
            return context.eventLoop.makeFailedFuture(HTTPError.invalidState("a response was already started"))
        }
        if closed { return context.eventLoop.makeFailedFuture(HTTPError.connectionClosed) }
        if ex.version.major == 1 && ex.version.minor == 0 {
            ex.keepAlive = false  // HTTP/1.0 has no chunked encoding: the body ends with the connection
        }
        var headers = responseHeaders(ex, extra)
        if ex.version.major == 1 && ex.version.minor >= 1 {
            headers.add(name: "Transfer-Encoding", value: "chunked")
        }
        ex.response = .streaming
        let done = context.writeAndFlush(
            wrapOutboundOut(.head(HTTPResponseHead(version: ex.version, status: Self.responseStatus(status), headers: headers)))
        )
        return mapWriteError(done)
    }

    func write(_ id: Int, bytes: [UInt8]) -> EventLoopFuture<Void> {
        guard let context else { return failed(HTTPError.connectionClosed) }
        let ex: ExchangeState
        do { ex = try exchange(id) } catch { return context.eventLoop.makeFailedFuture(error) }
        guard ex.response == .streaming else {
            return context.eventLoop.makeFailedFuture(HTTPError.invalidState("write without startStream"))
        }
        if closed { return context.eventLoop.makeFailedFuture(HTTPError.connectionClosed) }
        if ex.isHead || bytes.isEmpty { return context.eventLoop.makeSucceededVoidFuture() }
        let done = context.writeAndFlush(
            wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes))))
        )
        return mapWriteError(done)
    }

    /// A streamed response that failed half way: the connection is closed without the last
    /// chunk, so the client sees a cut response, never a complete-looking truncated one.
    func abort(_ id: Int) -> EventLoopFuture<Void> {
        guard let context else { return failed(HTTPError.connectionClosed) }
        let ex: ExchangeState
        do { ex = try exchange(id) } catch { return context.eventLoop.makeFailedFuture(error) }
        guard ex.response == .streaming else {
            return context.eventLoop.makeFailedFuture(HTTPError.invalidState("abort without startStream"))
        }
        ex.response = .complete
        closeNow()
        return context.eventLoop.makeSucceededVoidFuture()
    }

    func finish(_ id: Int) -> EventLoopFuture<Void> {
        guard let context else { return failed(HTTPError.connectionClosed) }
        let ex: ExchangeState
        do { ex = try exchange(id) } catch { return context.eventLoop.makeFailedFuture(error) }
        guard ex.response == .streaming else {
            return context.eventLoop.makeFailedFuture(HTTPError.invalidState("finish without startStream"))
        }
        ex.response = .complete
        if closed {
            advance()
            return context.eventLoop.makeFailedFuture(HTTPError.connectionClosed)
        }
        let done: EventLoopFuture<Void>
        if ex.isHead {
            // Nothing follows the head of a HEAD response (not even the last chunk).
            done = context.eventLoop.makeSucceededVoidFuture()
        } else {
            done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        }
        responseCompleted(ex, written: done)
        return mapWriteError(done)
    }

    private func responseCompleted(_ ex: ExchangeState, written: EventLoopFuture<Void>) {
        if !ex.keepAlive || inputClosed {
            let bound = NIOLoopBound(self, eventLoop: written.eventLoop)
            if !ex.requestEnded && !inputClosed && ex.hijackContinuation == nil {
                // Answered before the body was read (413, a refused upload): a client still
                // sending would get EPIPE instead of the answer if the connection closed now.
                written.whenComplete { _ in bound.value.linger() }
            } else {
                written.whenComplete { _ in bound.value.closeNow() }
            }
        }
        if ex.requestEnded {
            advance()
        } else {
            ex.discarding = true
            ex.body.removeAll()
            ex.bodyBytes = 0
            failBody(ex, .invalidState("the response is complete"))
            resumeReadingIfPossible()
        }
    }

    private func mapWriteError(_ future: EventLoopFuture<Void>) -> EventLoopFuture<Void> {
        future.flatMapErrorThrowing { error in
            if error is HTTPError { throw error }
            throw HTTPError.connectionClosed
        }
    }

    func handlerReturned(_ id: Int) {
        guard let ex = current, ex.id == id else { return }
        switch ex.response {
        case .none:
            let body = Array(#"{"message":"no response"}"#.utf8)
            _ = respond(id, status: 500, headers: [("Content-Type", "application/json")], body: body)
        case .streaming:
            _ = finish(id)
        case .complete, .hijacked:
            break
        }
    }

    // MARK: hijack

    func hijack(_ id: Int, contentType: String, extraHeaders: [(String, String)]) -> EventLoopFuture<RawStream> {
        guard let context else { return failed(HTTPError.connectionClosed) }
        let loop = context.eventLoop
        let ex: ExchangeState
        do { ex = try exchange(id) } catch { return loop.makeFailedFuture(error) }
        guard ex.response == .none, ex.hijackContinuation == nil else {
            return loop.makeFailedFuture(HTTPError.invalidState("a response was already started"))
        }
        if closed { return loop.makeFailedFuture(HTTPError.connectionClosed) }
        let promise = loop.makePromise(of: RawStream.self)
        if ex.requestEnded {
            completeHijack(ex, contentType: contentType, extraHeaders: extraHeaders, promise: promise)
        } else {
            // Throw the rest of the body away, then hijack.
            ex.discarding = true
            ex.body.removeAll()
            ex.bodyBytes = 0
            failBody(ex, .invalidState("the exchange was hijacked"))
            let bound = NIOLoopBound(self, eventLoop: loop)
            ex.hijackContinuation = {
                bound.value.completeHijack(ex, contentType: contentType, extraHeaders: extraHeaders, promise: promise)
            }
            resumeReadingIfPossible()
        }
        return promise.futureResult
    }

    private func completeHijack(
        _ ex: ExchangeState,
        contentType: String,
        extraHeaders: [(String, String)],
        promise: EventLoopPromise<RawStream>
    ) {
        guard let context, !closed, ex.requestEnded else {
            promise.fail(HTTPError.connectionClosed)
            return
        }
        ex.response = .hijacked
        hijacked = true
        becameBusy()
        var head = "HTTP/1.1 101 UPGRADED\r\nContent-Type: \(contentType)\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
        for (name, value) in server.defaultHeaders + extraHeaders {
            head += "\(name): \(value)\r\n"
        }
        head += "\r\n"
        let pipeline = context.pipeline.syncOperations
        let raw = RawHandler(gone: gone, inputClosed: inputClosed)
        do {
            // Encoder out first: the 101 goes to the socket as raw bytes.
            pipeline.removeHandler(encoder, promise: nil)
            let written = context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: head)))
            // Then the raw handler in our place, and the decoder out last: its removal (one loop tick
            // later) forwards every byte it holds past the request (stdin) to the raw handler.
            try pipeline.addHandler(raw, position: .after(self))
            pipeline.removeHandler(context: context, promise: nil)
            pipeline.removeHandler(decoder, promise: nil)
            let loop = context.eventLoop
            let stream = RawStream(loop: loop, handler: NIOLoopBound(raw, eventLoop: loop), gone: gone)
            written.whenComplete { result in
                switch result {
                case .success: promise.succeed(stream)
                case .failure: promise.fail(HTTPError.connectionClosed)
                }
            }
        } catch {
            promise.fail(error)
            context.close(promise: nil)
        }
    }
}
