#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// HTTP/1.1 server on a unix socket. Each connection is served concurrently; requests on one
/// connection are handled one after another. Runs on NIO's shared event loop group.
public final class HTTPServer: Sendable {
    public let socketPath: String
    private let socketMode: mode_t
    private let context: ServerContext
    private let listener = Mutex<Channel?>(nil)
    private let connections: ConnectionTracker

    /// Open connections (for tests and diagnostics).
    public var connectionCount: Int { connections.count }

    /// - Parameters:
    ///   - defaultHeaders: added to every response (e.g. Api-Version, Server).
    ///   - handler: called once per request, in its own task; see `HTTPExchange`.
    public init(
        socketPath: String,
        socketMode: mode_t = 0o660,
        defaultHeaders: [(String, String)] = [],
        limits: ConnectionLimits = ConnectionLimits(),
        handler: @escaping @Sendable (HTTPExchange) async -> Void
    ) {
        self.socketPath = socketPath
        self.socketMode = socketMode
        self.connections = ConnectionTracker(limits: limits)
        self.context = ServerContext(defaultHeaders: defaultHeaders, handler: handler, connections: connections)
    }

    /// Removes a stale socket file first; binds; chmod to socketMode; returns once listening.
    public func start() async throws {
        var st = stat()
        if lstat(socketPath, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK {
            unlink(socketPath)
        }
        let context = self.context
        let connections = self.connections
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            // A burst of clients (200 at once in tests/engine/test_load.py) must queue, not be
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
        let listener = try await bootstrap.bind(unixDomainSocketPath: socketPath).get()
        guard chmod(socketPath, socketMode) == 0 else {
            let err = errno
            try? await listener.close()
            throw IOError(errnoCode: err, reason: "chmod \(socketPath)")
        }
        self.listener.withLock { $0 = listener }
    }

    /// Stops listening, closes every open connection (hijacked ones too) and removes the socket file.
    /// Handlers still running see `clientClosed()` return and their writes throw.
    public func shutdown() async throws {
        let listener = self.listener.withLock { l -> Channel? in
            defer { l = nil }
            return l
        }
        let connections = self.connections.beginShutdown()
        if let listener {
            try? await listener.close()
        }
        for channel in connections {
            try? await channel.close()
        }
        unlink(socketPath)
    }
}
