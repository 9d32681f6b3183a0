import NIOCore
import NIOSSL
import NIOTLS

/// Secures a server connection: puts an `NIOSSLServerHandler` first in its pipeline and a
/// handler that logs a failed handshake (and closes the connection) without troubling the
/// HTTP handlers behind it. One SSL context is shared by all connections.
public struct TLSServerSetup: Sendable {
    let context: NIOSSLContext
    let trusted: [NIOSSLCertificate]
    let log: @Sendable (String) -> Void
    let liveness: TCPLiveness

    /// A client unreachable for `liveness` fails its connection (a migration's peer included).
    public init(identity: TLSIdentity, liveness: TCPLiveness = .default, log: @escaping @Sendable (String) -> Void) throws {
        self.context = try identity.makeServerContext()
        self.trusted = identity.trustedCAs
        self.liveness = liveness
        self.log = log
    }

    /// For `HTTPListener.tcp(host:port:secure:)`; runs on the channel's event loop.
    public func secure(_ channel: Channel) throws {
        try liveness.apply(to: channel)
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(SocketCloser())
        try sync.addHandler(NIOSSLServerHandler(context: context))
        try sync.addHandler(ServerTLSWatcher(log: log, trusted: trusted))
    }
}

/// Asks `SocketCloser` (in front of NIOSSL) to close the socket itself, after writing
/// `plaintext` (unencrypted) if given.
struct CloseSocketEvent {
    var plaintext: [UInt8] = []
}

/// First in the pipeline: acts on `CloseSocketEvent` past NIOSSL, on the raw socket.
/// See `ServerTLSWatcher`.
final class SocketCloser: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = NIOAny
    typealias OutboundOut = ByteBuffer

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let close = event as? CloseSocketEvent else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        if !close.plaintext.isEmpty {
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: close.plaintext)), promise: nil)
        }
        context.close(mode: .all, promise: promise)
    }
}

/// The answer to a plain-HTTP request on the TLS port (a client without --tlsverify):
/// readable by the docker CLI, which shows it, instead of a bare EOF.
let plainHTTPAnswer: [UInt8] = {
    let body = "Client sent an HTTP request to a TLS-only port: connect with TLS and a client certificate (docker --tlsverify, or DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH; cryo tls issue makes one).\n"
    return Array(("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
        + "Content-Length: \(body.utf8.count)\r\n\r\n" + body).utf8)
}()

/// Right behind NIOSSL. Logs a failed server handshake once, with the peer's address, and
/// closes the connection; after the handshake it passes events on. It also ends a close
/// the server started (idle timeout, `Connection: close`, shutdown) once the client's
/// close_notify arrives: with remote half-closure on, NIOSSL (2.37) does not finish that
/// close by itself and would hold the connection for its shutdown timeout.
final class ServerTLSWatcher: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    private let log: @Sendable (String) -> Void
    private let trusted: [NIOSSLCertificate]
    private var handshakeDone = false
    private var logged = false
    private var closing = false

    init(log: @escaping @Sendable (String) -> Void, trusted: [NIOSSLCertificate]) {
        self.log = log
        self.trusted = trusted
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent { handshakeDone = true }
        if closing, let e = event as? ChannelEvent, e == .inputClosed {
            // Both close_notify alerts are exchanged: nothing is left to wait for.
            context.triggerUserOutboundEvent(CloseSocketEvent(), promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all { closing = true }
        context.close(mode: mode, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if handshakeDone {
            context.fireErrorCaught(error)
            return
        }
        let reason = PeerCertificateDiagnosis.describe(error, channel: context.channel, trusted: trusted)
        if !logged {
            logged = true
            let peer = context.channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "unknown peer"
            log("TLS handshake from \(peer) failed: \(reason)")
            if reason == "http request" {
                // Nothing was said in TLS yet: answer in plain HTTP, then close.
                context.triggerUserOutboundEvent(CloseSocketEvent(plaintext: plainHTTPAnswer), promise: nil)
                return
            }
        }
        context.close(promise: nil)
    }
}
