import CryoTLS
import Glibc
import NIOCore
import NIOPosix
import Testing

@Suite struct TCPLivenessTests {
    /// name → value, for the TCP-level options.
    static func values(_ l: TCPLiveness) -> [Int32: SocketOptionValue] {
        var out: [Int32: SocketOptionValue] = [:]
        for (option, value) in l.options where option.level == NIOBSDSocket.OptionLevel.tcp.rawValue {
            out[option.name] = value
        }
        return out
    }

    @Test func fifteenSecondsOfSilenceFailAConnection() {
        let v = Self.values(.default)
        #expect(v[TCP_USER_TIMEOUT] == 15_000)
        let idle = v[TCP_KEEPIDLE]!, interval = v[TCP_KEEPINTVL]!, probes = v[TCP_KEEPCNT]!
        #expect(idle == 5 && interval == 2 && probes == 5)
        #expect(idle + interval * probes <= 15)
        #expect(TCPLiveness.default.options.contains { $0.0.level == SOL_SOCKET && $0.0.name == SO_KEEPALIVE && $0.1 == 1 })
    }

    @Test func aTinyTimeoutStillProbes() {
        let v = Self.values(TCPLiveness(seconds: 1))
        #expect(v[TCP_USER_TIMEOUT] == 2_000)
        #expect(v[TCP_KEEPIDLE]! >= 1 && v[TCP_KEEPINTVL]! >= 1 && v[TCP_KEEPCNT]! >= 1)
    }

    @Test func theOptionsLandOnTheSocket() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        defer { server.close(promise: nil) }
        let port = server.localAddress!.port!
        let liveness = TCPLiveness(seconds: 9)
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try liveness.apply(to: ch) } }
            .connect(host: "127.0.0.1", port: port).get()
        defer { client.close(promise: nil) }
        let timeout = try await client.getOption(ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: TCP_USER_TIMEOUT))).get()
        let keepalive = try await client.getOption(ChannelOptions.socketOption(.so_keepalive)).get()
        #expect(timeout == 9_000)
        #expect(keepalive != 0)
    }
}
