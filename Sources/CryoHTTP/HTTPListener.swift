#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// One address the server listens on: a unix socket, or a TCP port whose connections are
/// secured (TLS) by handlers that `secure` puts first in each connection's pipeline.
/// CryoHTTP knows no TLS itself; there is no TCP listener without a `secure` hook.
public struct HTTPListener: Sendable, CustomStringConvertible {
    public enum Address: Sendable, Equatable {
        case unix(path: String, mode: mode_t)
        case tcp(host: String, port: Int)
    }

    public let address: Address
    /// Adds the connection's security handlers (synchronously, on its event loop).
    let secure: (@Sendable (Channel) throws -> Void)?

    public static func unix(_ path: String, mode: mode_t = 0o660) -> HTTPListener {
        HTTPListener(address: .unix(path: path, mode: mode), secure: nil)
    }

    public static func tcp(host: String, port: Int, secure: @escaping @Sendable (Channel) throws -> Void) -> HTTPListener {
        HTTPListener(address: .tcp(host: host, port: port), secure: secure)
    }

    /// `unix:///path` or `tcp://host:port`, as `-H` spells it.
    public var description: String {
        switch address {
        case .unix(let path, _): return "unix://" + path
        case .tcp(let host, let port): return "tcp://" + (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
        }
    }
}

extension HTTPListener.Address {
    /// One `-H` value as dockerd reads it: `unix:///path`, or `tcp://ADDR:PORT`
    /// (`tcp://:PORT` is every address; the port defaults to 2376, Docker's TLS port;
    /// `[v6]` in brackets). Unix sockets get `unixMode`.
    public static func parse(_ value: String, unixMode: mode_t = 0o660) throws -> HTTPListener.Address {
        if value.hasPrefix("unix://") {
            let path = String(value.dropFirst(7))
            guard path.hasPrefix("/") else { throw ListenError("-H \(value): unix:// needs an absolute path") }
            return .unix(path: path, mode: unixMode)
        }
        guard value.hasPrefix("tcp://") else {
            throw ListenError("-H \(value): cryod listens on unix://PATH or tcp://ADDR:PORT")
        }
        var rest = Substring(value.dropFirst(6))
        if rest.hasSuffix("/") { rest.removeLast() }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw ListenError("-H \(value): unclosed [ in the address") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw ListenError("-H \(value): expected :PORT after ]")
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        if host.isEmpty { host = "0.0.0.0" }
        var port = 2376
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else {
                throw ListenError("-H \(value): the port must be a number from 1 to 65535")
            }
            port = p
        }
        return .tcp(host: String(host), port: port)
    }
}

/// A listener that cannot be set up: a bad `-H` value, or a failed bind.
public struct ListenError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
