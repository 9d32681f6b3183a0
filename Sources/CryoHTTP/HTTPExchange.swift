import NIOCore

/// One request and its response. Methods may be called from any task; they hop to the connection's
/// event loop. Calls after the exchange is over throw `HTTPError.invalidState`.
public final class HTTPExchange: Sendable {
    public let request: HTTPRequest
    private let id: Int
    private let loop: EventLoop
    private let handler: NIOLoopBound<HTTPConnectionHandler>
    private let gone: OneShotSignal

    init(request: HTTPRequest, id: Int, loop: EventLoop, handler: NIOLoopBound<HTTPConnectionHandler>, gone: OneShotSignal) {
        self.request = request
        self.id = id
        self.loop = loop
        self.handler = handler
        self.gone = gone
    }

    /// The next chunk of the request body, nil at its end.
    private func nextChunk() async throws -> ByteBuffer? {
        let token = CancelToken()
        let handler = self.handler
        let id = self.id
        return try await withTaskCancellationHandler {
            try await onLoop(loop) { handler.value.nextBodyChunk(id, token: token) }
        } onCancel: {
            token.cancel()
            loop.execute { handler.value.cancelBodyWait(id, token: token) }
        }
    }

    /// Whole request body (Content-Length or chunked). Throws HTTPError.bodyTooLarge above `limit`.
    public func collectBody(limit: Int) async throws -> [UInt8] {
        if let declared = request.header("Content-Length").flatMap(Int.init), declared > limit {
            throw HTTPError.bodyTooLarge(limit)
        }
        var body: [UInt8] = []
        while let chunk = try await nextChunk() {
            if body.count + chunk.readableBytes > limit { throw HTTPError.bodyTooLarge(limit) }
            body.append(contentsOf: chunk.readableBytesView)
        }
        return body
    }

    /// Request body as a stream of chunks, for large uploads; the connection is read only as fast as
    /// the stream is consumed. Only one consumer at a time.
    public func bodyChunks() -> AsyncThrowingStream<[UInt8], Error> {
        AsyncThrowingStream(unfolding: { [self] in
            try await self.nextChunk().map { Array($0.readableBytesView) }
        })
    }

    /// Complete response with body; sets Content-Length. For HEAD, no body is written but
    /// Content-Length is kept. Content-Length/Transfer-Encoding in `headers` are ignored.
    public func respond(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) async throws {
        let handler = self.handler
        let id = self.id
        try await onLoop(loop) { handler.value.respond(id, status: status, headers: headers, body: body) }
    }

    /// Start a streaming response (Transfer-Encoding: chunked). The head is flushed immediately.
    public func startStream(status: Int, headers: [(String, String)]) async throws {
        let handler = self.handler
        let id = self.id
        try await onLoop(loop) { handler.value.startStream(id, status: status, headers: headers) }
    }

    /// One chunk, flushed; returns once written. Throws HTTPError.connectionClosed if the client is gone.
    public func write(_ bytes: [UInt8]) async throws {
        let handler = self.handler
        let id = self.id
        try await onLoop(loop) { handler.value.write(id, bytes: bytes) }
    }

    /// The terminating chunk.
    public func finish() async throws {
        let handler = self.handler
        let id = self.id
        try await onLoop(loop) { handler.value.finish(id) }
    }

    /// Ends a streaming response that failed half way by closing the connection (no
    /// terminating chunk): the client sees an incomplete response.
    public func abort() async throws {
        let handler = self.handler
        let id = self.id
        try await onLoop(loop) { handler.value.abort(id) }
    }

    /// Hijack: the rest of the request body is discarded, then exactly
    /// "HTTP/1.1 101 UPGRADED\r\nContent-Type: <contentType>\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
    /// plus the server's default headers and `extraHeaders`, then "\r\n", is written and flushed on
    /// its own; the HTTP codec leaves the channel. Returns once the 101 is written. Bytes the client
    /// sent after the request are the first bytes `RawStream.read()` returns.
    public func hijack(contentType: String, extraHeaders: [(String, String)] = []) async throws -> RawStream {
        let handler = self.handler
        let id = self.id
        return try await onLoop(loop) {
            handler.value.hijack(id, contentType: contentType, extraHeaders: extraHeaders)
        }
    }

    /// Returns when the client connection closes (or, before a hijack, when the client shuts down its
    /// sending side), or when the calling task is cancelled.
    public func clientClosed() async {
        await gone.wait()
    }

    /// True once the client connection is known to be closed.
    public var isClientClosed: Bool { gone.hasFired }
}
