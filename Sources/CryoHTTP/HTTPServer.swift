#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// HTTP/1.1 server on unix sockets and TLS-secured TCP ports (see `HTTPListener`). Each
/// connection is served concurrently; requests on one connection are handled one after
/// another. All listeners share one connection limit. Runs on NIO's shared event loop group.
public final class HTTPServer: Sendable {
    /// The first unix socket listened on ("" if none).
    public let socketPath: String
    public let listeners: [HTTPListener]
    private let context: ServerContext
    private let channels = Mutex<[Channel]>([])
    private let connections: ConnectionTracker

    /// Open connections (for tests and diagnostics).
    public var connectionCount: Int { connections.count }

    /// - Parameters:
    ///   - defaultHeaders: added to every response (e.g. Api-Version, Server).
    ///   - handler: called once per request, in its own task; see `HTTPExchange`.
    public init(
        listeners: [HTTPListener],
        defaultHeaders: [(String, String)] = [],
        limits: ConnectionLimits = ConnectionLimits(),
        handler: @escaping @Sendable (HTTPExchange) async -> Void
    ) {
        self.listeners = listeners
        self.socketPath = listeners.lazy.compactMap { l -> String? in
            if case .unix(let path, _) = l.address { return path }
            return nil
        }.first ?? ""
        self.connections = ConnectionTracker(limits: limits)
        self.context = ServerContext(defaultHeaders: defaultHeaders, handler: handler, connections: connections)
    }

    public convenience init(
        socketPath: String,
        socketMode: mode_t = 0o660,
        defaultHeaders: [(String, String)] = [],
        limits: ConnectionLimits = ConnectionLimits(),
        handler: @escaping @Sendable (HTTPExchange) async -> Void
    ) {
        self.init(listeners: [.unix(socketPath, mode: socketMode)], defaultHeaders: defaultHeaders, limits: limits, handler: handler)
    }

    /// Binds every listener (a unix socket: removes a stale socket file first, then chmods
    /// it); returns once all listen. If one fails, those already bound are closed.
    public func start() async throws {
        var bound: [Channel] = []
        do {
            for l in listeners {
                bound.append(try await bind(l))
            }
        } catch {
            for c in bound { try? await c.close() }
            throw error
        }
        channels.withLock { $0 = bound }
    }

    private func bind(_ listener: HTTPListener) async throws -> Channel {
        let context = self.context
        let connections = self.connections
        let secure = listener.secure
        var bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            // A burst of clients (200 at once in integration/engine/test_load.py) must queue, not be
            // refused: a unix socket whose backlog is full fails connect() with EAGAIN at once.
            // The kernel caps this at net.core.somaxconn.
            .serverChannelOption(ChannelOptions.backlog, value: 4096)
            // accept() failing (EMFILE, ENFILE, ENOMEM) pauses accepting for a second
            // instead of retrying at once in a busy loop.
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler(shouldForwardIOErrorCaught: false))
                }
            }
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            // A hijacked stream may carry bulk data (a migration's pages): reads grow up to 1 MiB.
            .childChannelOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 1 << 20))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Over the limit with every other connection busy: closed at once.
                    guard connections.admit(channel) else {
                        channel.close(promise: nil)
                        return
                    }
                    channel.closeFuture.whenComplete { _ in connections.remove(channel) }
                    // TLS first: the HTTP handlers below see plaintext.
                    try secure?(channel)
                    let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
                    var config = HTTPResponseEncoder.Configuration()
                    config.automaticallySetFramingHeaders = false
                    let encoder = HTTPResponseEncoder(configuration: config)
                    let handler = HTTPConnectionHandler(
                        server: context,
                        loop: channel.eventLoop,
                        decoder: decoder,
                        encoder: encoder
                    )
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(decoder)
                    try sync.addHandler(encoder)
                    try sync.addHandler(handler)
                }
            }
        switch listener.address {
        case .unix(let socketPath, let socketMode):
            var st = stat()
            if lstat(socketPath, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK {
                unlink(socketPath)
            }
            let channel = try await bootstrap.bind(unixDomainSocketPath: socketPath).get()
            guard chmod(socketPath, socketMode) == 0 else {
                let err = errno
                try? await channel.close()
                throw IOError(errnoCode: err, reason: "chmod \(socketPath)")
            }
            return channel
        case .tcp(let host, let port):
            guard secure != nil else { throw ListenError("\(listener): a TCP listener needs TLS") }
            bootstrap = bootstrap
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                // Interactive streams (attach, exec) send keystrokes one by one.
                .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            do {
                return try await bootstrap.bind(host: host, port: port).get()
            } catch {
                throw ListenError("cannot listen on \(listener): \(error)")
            }
        }
    }

    /// The port a TCP listener got (for listeners bound to port 0), in listener order.
    public var boundPorts: [Int?] {
        channels.withLock { $0.map { $0.localAddress?.port } }
    }

    /// Stops listening, closes every open connection (hijacked ones too) and removes the socket files.
    /// Handlers still running see `clientClosed()` return and their writes throw.
    public func shutdown() async throws {
        let listening = self.channels.withLock { l -> [Channel] in
            defer { l = [] }
            return l
        }
        let connections = self.connections.beginShutdown()
        for listener in listening {
            try? await listener.close()
        }
        // All at once: a TLS connection's close may wait a moment for the peer's close_notify.
        let closing = connections.map { $0.close() }
        for c in closing {
            try? await c.get()
        }
        for l in listeners {
            if case .unix(let path, _) = l.address { unlink(path) }
        }
    }
}
