import Glibc
import NIOCore

/// How long a TCP peer may stay unreachable before its connection fails: TCP keepalive (a
/// silent connection is probed) and TCP_USER_TIMEOUT (data sent and never acknowledged), so a
/// peer behind a stalled network — packets dropped, no reset — fails like a cut connection in
/// about `seconds`, not after the kernel's ~15 minutes of retransmissions. A peer whose kernel
/// still answers (its process merely stopped) is not caught by this.
public struct TCPLiveness: Sendable, Equatable {
    public var seconds: Int

    public init(seconds: Int) { self.seconds = max(2, seconds) }

    public static let `default` = TCPLiveness(seconds: 15)

    /// The socket options and their values: idle for a third of the time, then probes every
    /// sixth, as many as fit in the rest.
    public var options: [(ChannelOptions.Types.SocketOption, SocketOptionValue)] {
        let idle = max(1, seconds / 3)
        let interval = max(1, seconds / 6)
        let probes = max(1, (seconds - idle) / interval)
        let tcp = { (name: Int32) in ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: name)) }
        return [
            (ChannelOptions.Types.SocketOption(level: .socket, name: .so_keepalive), 1),
            (tcp(TCP_KEEPIDLE), SocketOptionValue(idle)),
            (tcp(TCP_KEEPINTVL), SocketOptionValue(interval)),
            (tcp(TCP_KEEPCNT), SocketOptionValue(probes)),
            (tcp(TCP_USER_TIMEOUT), SocketOptionValue(seconds * 1000)),
        ]
    }

    /// Sets them on a TCP channel; on its event loop.
    public func apply(to channel: Channel) throws {
        guard let sync = channel.syncOptions else { return }
        for (option, value) in options { try sync.setOption(option, value: value) }
    }
}
