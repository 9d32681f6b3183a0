import CryoTLS
import FoundationEssentials
import Glibc

/// A finished response with its whole body.
public struct HTTPResponse: Sendable {
    public var head: HTTPResponseHead
    public var body: [UInt8]
    public var status: Int { head.status }
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// A response whose body is read piece by piece (logs -f, wait, load progress).
public final class ResponseStream {
    public let head: HTTPResponseHead
    let connection: DaemonConnection
    var framing: BodyFraming
    var remaining: Int
    var chunked = ChunkedDecoder()
    var finished = false

    init(head: HTTPResponseHead, connection: DaemonConnection, method: String) {
        self.head = head
        self.connection = connection
        self.framing = head.framing(requestMethod: method)
        if case .length(let n) = framing { remaining = n } else { remaining = 0 }
        if framing == .none { finished = true }
    }

    /// The next piece of the body; nil when it is complete.
    public func read() throws -> [UInt8]? {
        while !finished {
            guard let bytes = try connection.readSome() else {
                finished = true
                switch framing {
                case .untilClose, .none: return nil
                case .length: throw ClientError.io("the daemon closed the connection with \(remaining) bytes of the response missing")
                case .chunked: throw ClientError.io("the daemon closed the connection in the middle of a chunked response")
                }
            }
            switch framing {
            case .none: finished = true
            case .untilClose: return bytes
            case .length:
                let take = min(remaining, bytes.count)
                remaining -= take
                if remaining == 0 { finished = true }
                if take > 0 { return Array(bytes[0..<take]) }
            case .chunked:
                let out = try chunked.feed(bytes)
                if chunked.isDone { finished = true }
                if !out.isEmpty { return out }
            }
        }
        return nil
    }

    public func readAll() throws -> [UInt8] {
        var all: [UInt8] = []
        while let b = try read() { all += b }
        return all
    }

    /// Reads newline-separated lines (JSON message streams) and hands each to `line`.
    public func forEachLine(_ line: (String) throws -> Void) throws {
        var pending: [UInt8] = []
        while let b = try read() {
            pending += b
            while let nl = pending.firstIndex(of: 0x0a) {
                let l = String(decoding: pending[..<nl], as: UTF8.self)
                pending.removeFirst(nl + 1)
                if !l.isEmpty { try line(l) }
            }
        }
        if !pending.isEmpty { try line(String(decoding: pending, as: UTF8.self)) }
    }

    public func close() { connection.close() }
}

/// A hijacked connection (attach, exec start): raw bytes both ways after `101 UPGRADED`.
// @unchecked: after a hijack one thread writes (stdin) while another reads; `initial` is only
// touched by the reading side.
public final class HijackedStream: @unchecked Sendable {
    public let connection: DaemonConnection
    var initial: [UInt8]

    init(connection: DaemonConnection, initial: [UInt8]) {
        self.connection = connection
        self.initial = initial
    }

    /// Output from the daemon; nil at EOF. The bytes that arrived together with the 101
    /// head come first.
    public func read() throws -> [UInt8]? {
        if !initial.isEmpty {
            let b = initial
            initial = []
            return b
        }
        return try connection.readSome()
    }

    public func write(_ bytes: [UInt8]) throws { try connection.writeAll(bytes) }
    public func closeWrite() { connection.closeWrite() }
    public func close() { connection.close() }
}

/// Source of a request body sent with `Transfer-Encoding: chunked`.
public enum UploadSource: Sendable {
    case fileDescriptor(Int32)
}

/// The Docker Engine API client for cryod over a unix socket, or over TCP with mutual TLS.
/// Every call opens its own connection (the CLI keeps several in flight at once: attach,
/// wait, start).
public struct DaemonClient: Sendable {
    public static let apiVersion = "1.50"
    public static let defaultSocket = "/run/cryo/cryo.sock"

    /// `unix://PATH` or `tcp://HOST:PORT` as the user gave it (for messages).
    public let host: String
    /// The unix socket path ("" for TCP).
    public let socketPath: String
    /// TCP: where to dial, and the identity to present and verify the daemon with.
    let tcp: (host: String, port: Int, identity: TLSIdentity)?
    public var userAgent = "cryo-cli/0.1.0"

    /// `unix://PATH`; `tcp://HOST:PORT` needs `tls` (there is no unauthenticated TCP).
    public init(host: String, tls: TLSIdentity? = nil) throws {
        self.host = host
        if host.hasPrefix("unix://"), host.count > 7 {
            self.socketPath = String(host.dropFirst(7))
            self.tcp = nil
            return
        }
        guard host.hasPrefix("tcp://") else {
            throw ClientError.usage("unsupported host \"\(host)\": cryo speaks to cryod over unix://PATH or tcp://HOST:PORT (with TLS)")
        }
        let (h, p) = try Self.parseTCP(host)
        guard let tls else {
            throw ClientError.usage("refusing to connect to \(host) without TLS: give --tlsverify with --tlscacert, --tlscert and --tlskey (or DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH holding ca.pem, cert.pem and key.pem)")
        }
        self.socketPath = ""
        self.tcp = (h, p, tls)
    }

    /// tcp://HOST:PORT, tcp://[V6]:PORT; the port defaults to 2376 (Docker's TLS port).
    static func parseTCP(_ host: String) throws -> (String, Int) {
        var rest = Substring(host.dropFirst(6))
        if rest.hasSuffix("/") { rest.removeLast() }
        var name: Substring
        var portText: Substring?
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            name = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() }
        } else if let colon = rest.lastIndex(of: ":") {
            name = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            name = rest
        }
        guard !name.isEmpty else { throw ClientError.usage("\(host): no host name or address") }
        var port = 2376
        if let portText {
            guard let n = Int(portText), (1...65535).contains(n) else {
                throw ClientError.usage("\(host): the port must be a number from 1 to 65535")
            }
            port = n
        }
        return (String(name), port)
    }

    /// `-H/--host`, then `CRYO_HOST`, then `DOCKER_HOST`, then the default socket.
    public static func resolveHost(flag: String?, environment: [String: String]) -> String {
        if let f = flag, !f.isEmpty { return f }
        if let e = environment["CRYO_HOST"], !e.isEmpty { return e }
        if let e = environment["DOCKER_HOST"], !e.isEmpty { return e }
        return "unix://" + defaultSocket
    }

    public func connect() throws -> DaemonConnection {
        if let tcp {
            return try DaemonConnection(tlsHost: tcp.host, port: tcp.port, identity: tcp.identity, display: host)
        }
        do {
            return try DaemonConnection(path: socketPath)
        } catch ClientError.cannotConnect(_, let reason) {
            throw ClientError.cannotConnect(host: host, reason: reason)
        }
    }

    /// "/containers/json" + query → "/v1.50/containers/json?all=1". Query values are
    /// percent-encoded; pairs keep their order.
    public static func target(_ path: String, _ query: [(String, String)] = []) -> String {
        var t = "/v\(apiVersion)" + path
        if !query.isEmpty {
            t += "?" + query.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
        }
        return t
    }

    public static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(b >> 4)], hex[Int(b & 15)]], as: UTF8.self)
            }
        }
        return out
    }

    /// The request head bytes. A body-less POST carries `Content-Length: 0` like the CLI's.
    public func requestHead(_ method: String, _ target: String, headers: [(String, String)], bodyLength: Int?, chunked: Bool = false) -> [UInt8] {
        var s = "\(method) \(target) HTTP/1.1\r\nHost: cryo\r\nUser-Agent: \(userAgent)\r\n"
        for (k, v) in headers { s += "\(k): \(v)\r\n" }
        if chunked {
            s += "Transfer-Encoding: chunked\r\n"
        } else if let n = bodyLength {
            s += "Content-Length: \(n)\r\n"
        } else if method == "POST" || method == "PUT" {
            s += "Content-Length: 0\r\n"
        }
        s += "\r\n"
        return Array(s.utf8)
    }

    /// Sends a request and returns the head; the body is read through the stream.
    public func open(_ method: String, _ path: String, query: [(String, String)] = [], json: [UInt8]? = nil,
                     headers: [(String, String)] = []) throws -> ResponseStream {
        let c = try connect()
        var h = headers
        if json != nil { h.append(("Content-Type", "application/json")) }
        try c.writeAll(requestHead(method, Self.target(path, query), headers: h, bodyLength: json?.count) + (json ?? []))
        let head = try c.readHead()
        let stream = ResponseStream(head: head, connection: c, method: method)
        if head.status >= 400 {
            let body = (try? stream.readAll()) ?? []
            stream.close()
            throw Self.error(status: head.status, body: body)
        }
        return stream
    }

    /// A whole request/response; status >= 400 throws `ClientError.daemon`.
    @discardableResult
    public func call(_ method: String, _ path: String, query: [(String, String)] = [], json: [UInt8]? = nil) throws -> HTTPResponse {
        let s = try open(method, path, query: query, json: json)
        defer { s.close() }
        return HTTPResponse(head: s.head, body: try s.readAll())
    }

    /// GET and decode JSON.
    public func get<T: Decodable>(_ type: T.Type, _ path: String, query: [(String, String)] = []) throws -> T {
        let r = try call("GET", path, query: query)
        return try decode(type, r.body, what: path)
    }

    public func decode<T: Decodable>(_ type: T.Type, _ body: [UInt8], what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch {
            throw ClientError.protocolError("unexpected response to \(what): \(error)")
        }
    }

    /// Streams the bytes of `source` as a chunked request body (docker load's upload),
    /// then returns the response stream.
    public func upload(_ method: String, _ path: String, query: [(String, String)] = [], contentType: String,
                       source: UploadSource) throws -> ResponseStream {
        let c = try connect()
        try c.writeAll(requestHead(method, Self.target(path, query), headers: [("Content-Type", contentType)], bodyLength: nil, chunked: true))
        let fd: Int32
        switch source { case .fileDescriptor(let f): fd = f }
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var writeError: Error?
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ClientError.io("reading the upload: \(errnoText())")
            }
            if n == 0 { break }
            do {
                try c.writeAll(Array(String(n, radix: 16).utf8) + [13, 10] + buf[0..<n] + [13, 10])
            } catch {
                // The daemon may have answered early (an error) and closed: read that answer.
                writeError = error
                break
            }
        }
        if writeError == nil { try? c.writeAll(Array("0\r\n\r\n".utf8)) }
        let head: HTTPResponseHead
        do {
            head = try c.readHead()
        } catch {
            throw writeError ?? error
        }
        let stream = ResponseStream(head: head, connection: c, method: method)
        if head.status >= 400 {
            let body = (try? stream.readAll()) ?? []
            stream.close()
            throw Self.error(status: head.status, body: body)
        }
        return stream
    }

    /// Sends an upgrade request (`Connection: Upgrade`, `Upgrade: tcp`) and expects
    /// `101 UPGRADED`, as docker's CLI does; then the socket carries raw bytes.
    public func hijack(_ path: String, query: [(String, String)] = [], json: [UInt8]? = nil) throws -> HijackedStream {
        let c = try connect()
        var h: [(String, String)] = [("Connection", "Upgrade"), ("Upgrade", "tcp")]
        h.append(("Content-Type", json == nil ? "text/plain" : "application/json"))
        try c.writeAll(requestHead("POST", Self.target(path, query), headers: h, bodyLength: json?.count ?? 0) + (json ?? []))
        let head = try c.readHead()
        if head.status >= 400 {
            let stream = ResponseStream(head: head, connection: c, method: "POST")
            let body = (try? stream.readAll()) ?? []
            c.close()
            throw Self.error(status: head.status, body: body)
        }
        guard head.status == 101 else {
            c.close()
            throw ClientError.protocolError("unable to upgrade to tcp, received \(head.status)")
        }
        return HijackedStream(connection: c, initial: c.takeBuffered())
    }

    /// `{"message": "..."}` → ClientError.daemon; any other body is shown as text.
    public static func error(status: Int, body: [UInt8]) -> ClientError {
        struct M: Decodable { var message: String }
        if let m = try? JSONDecoder().decode(M.self, from: Data(body)) {
            return .daemon(status: status, message: m.message)
        }
        var text = String(decoding: body, as: UTF8.self)
        while text.hasSuffix("\n") { text.removeLast() }
        return .daemon(status: status, message: text.isEmpty ? "HTTP status \(status)" : text)
    }
}
