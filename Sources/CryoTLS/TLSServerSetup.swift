import NIOCore
import NIOSSL
import NIOTLS

/// Secures a server connection: puts an `NIOSSLServerHandler` first in its pipeline and a
/// handler that logs a failed handshake (and closes the connection) without troubling the
/// HTTP handlers behind it. One SSL context is shared by all connections.
public struct TLSServerSetup: Sendable {
    let context: NIOSSLContext
    let log: @Sendable (String) -> Void

    public init(identity: TLSIdentity, log: @escaping @Sendable (String) -> Void) throws {
        self.context = try identity.makeServerContext()
        self.log = log
    }

    /// For `HTTPListener.tcp(host:port:secure:)`; runs on the channel's event loop.
    public func secure(_ channel: Channel) throws {
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(NIOSSLServerHandler(context: context))
        try sync.addHandler(HandshakeFailureLogger(log: log))
    }
}

/// Logs a failed server handshake once, with the peer's address, and closes the
/// connection; after the handshake it only passes events on.
final class HandshakeFailureLogger: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let log: @Sendable (String) -> Void
    private var handshakeDone = false
    private var logged = false

    init(log: @escaping @Sendable (String) -> Void) { self.log = log }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent { handshakeDone = true }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if handshakeDone {
            context.fireErrorCaught(error)
            return
        }
        if !logged {
            logged = true
            let peer = context.channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "unknown peer"
            log("TLS handshake from \(peer) failed: \(TLSErrorText.describe(error))")
        }
        context.close(promise: nil)
    }
}
