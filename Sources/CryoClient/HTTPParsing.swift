// Pure HTTP/1.1 response parsing: the status line and headers, and the body framing
// (Content-Length, chunked, or until the connection closes). No I/O here, so all of it is
// unit-tested with byte arrays.

/// Status line and headers of a response.
public struct HTTPResponseHead: Sendable, Equatable {
    public var status: Int
    public var reason: String
    public var headers: [(String, String)]

    public init(status: Int, reason: String, headers: [(String, String)]) {
        self.status = status
        self.reason = reason
        self.headers = headers
    }

    /// The first header with this name (case-insensitive).
    public func header(_ name: String) -> String? {
        let n = name.lowercased()
        return headers.first { $0.0.lowercased() == n }?.1
    }

    public static func == (a: HTTPResponseHead, b: HTTPResponseHead) -> Bool {
        a.status == b.status && a.reason == b.reason && a.headers.map { "\($0.0):\($0.1)" } == b.headers.map { "\($0.0):\($0.1)" }
    }

    /// How the body that follows this head is delimited (RFC 9112 §6.3), for a response
    /// to a request with this method.
    public func framing(requestMethod: String) -> BodyFraming {
        if requestMethod == "HEAD" || status == 204 || status == 304 || (100..<200).contains(status) { return .none }
        if let te = header("Transfer-Encoding"), te.lowercased().contains("chunked") { return .chunked }
        if let cl = header("Content-Length"), let n = Int(cl.trimmingSpaces) { return n == 0 ? .none : .length(n) }
        return .untilClose
    }

    /// Parses a head at the start of `bytes`. Returns nil when the blank line ending it has
    /// not arrived yet; `consumed` is the number of bytes the head took (including CRLFCRLF).
    public static func parse(_ bytes: [UInt8]) throws -> (head: HTTPResponseHead, consumed: Int)? {
        guard let end = findHeadEnd(bytes) else {
            if bytes.count > 64 * 1024 { throw ClientError.protocolError("response head longer than 64 KiB") }
            return nil
        }
        let text = String(decoding: bytes[0..<end], as: UTF8.self)
        var lines = text.components(separatedByCRLF: ())
        guard !lines.isEmpty else { throw ClientError.protocolError("empty response head") }
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]), (100...999).contains(status) else {
            throw ClientError.protocolError("malformed status line: \(statusLine)")
        }
        var headers: [(String, String)] = []
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else {
                throw ClientError.protocolError("malformed header line: \(line)")
            }
            headers.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingSpaces))
        }
        return (HTTPResponseHead(status: status, reason: parts.count > 2 ? String(parts[2]) : "", headers: headers), end + 4)
    }

    static func findHeadEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        var i = 0
        while i + 3 < b.count {
            if b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
            i += 1
        }
        return nil
    }
}

public enum BodyFraming: Sendable, Equatable {
    case none
    case length(Int)
    case chunked
    case untilClose
}

/// Incremental decoder of a chunked body: feed raw bytes, take body bytes. Bytes after
/// the terminating chunk and its trailers are kept in `leftover`.
public struct ChunkedDecoder: Sendable {
    enum State: Sendable { case size, data(Int), dataCRLF, trailers, done }
    var state: State = .size
    var buffer: [UInt8] = []
    public private(set) var leftover: [UInt8] = []

    public init() {}

    public var isDone: Bool { if case .done = state { return true } else { return false } }

    /// Appends `bytes` and returns the body bytes they complete.
    public mutating func feed(_ bytes: [UInt8]) throws -> [UInt8] {
        if isDone { leftover += bytes; return [] }
        buffer += bytes
        var out: [UInt8] = []
        var pos = 0
        loop: while true {
            switch state {
            case .size:
                guard let nl = crlf(from: pos) else { break loop }
                let line = String(decoding: buffer[pos..<nl], as: UTF8.self)
                let hex = line.split(separator: ";", maxSplits: 1).first.map { String($0).trimmingSpaces } ?? ""
                guard !hex.isEmpty, let n = Int(hex, radix: 16), n >= 0 else {
                    throw ClientError.protocolError("bad chunk size line: \(line)")
                }
                pos = nl + 2
                state = n == 0 ? .trailers : .data(n)
            case .data(let n):
                let avail = buffer.count - pos
                if avail == 0 { break loop }
                let take = min(n, avail)
                out += buffer[pos..<(pos + take)]
                pos += take
                state = take == n ? .dataCRLF : .data(n - take)
            case .dataCRLF:
                guard buffer.count - pos >= 2 else { break loop }
                guard buffer[pos] == 13 && buffer[pos + 1] == 10 else {
                    throw ClientError.protocolError("chunk not followed by CRLF")
                }
                pos += 2
                state = .size
            case .trailers:
                guard let nl = crlf(from: pos) else { break loop }
                let empty = nl == pos
                pos = nl + 2
                if empty {
                    state = .done
                    leftover = Array(buffer[pos...])
                    buffer = []
                    return out
                }
            case .done:
                break loop
            }
        }
        buffer.removeFirst(pos)
        return out
    }

    func crlf(from start: Int) -> Int? {
        var i = start
        while i + 1 < buffer.count {
            if buffer[i] == 13 && buffer[i + 1] == 10 { return i }
            i += 1
        }
        return nil
    }
}

/// Docker's multiplexed stream framing, decoded incrementally:
/// `[stream, 0, 0, 0, size (big-endian u32)]` + payload.
public struct FrameDemuxer: Sendable {
    public enum Stream: UInt8, Sendable { case stdin = 0, stdout = 1, stderr = 2, systemError = 3 }
    var buffer: [UInt8] = []
    public init() {}

    public mutating func feed(_ bytes: [UInt8]) { buffer += bytes }

    /// The next complete frame, or nil until more bytes arrive. An unknown stream type is
    /// an error, as in docker's stdcopy ("Unrecognized input header").
    public mutating func next() throws -> (Stream, [UInt8])? {
        guard buffer.count >= 8 else { return nil }
        guard let kind = Stream(rawValue: buffer[0]) else {
            throw ClientError.protocolError("Unrecognized input header: \(buffer[0])")
        }
        let n = Int(buffer[4]) << 24 | Int(buffer[5]) << 16 | Int(buffer[6]) << 8 | Int(buffer[7])
        guard buffer.count >= 8 + n else { return nil }
        let payload = Array(buffer[8..<(8 + n)])
        buffer.removeFirst(8 + n)
        return (kind, payload)
    }

    /// Bytes of an incomplete frame still buffered (non-zero at EOF means truncation).
    public var pending: Int { buffer.count }

    public static func encode(_ stream: Stream, _ payload: [UInt8]) -> [UInt8] {
        let n = UInt32(payload.count)
        return [stream.rawValue, 0, 0, 0, UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)] + payload
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return String(s)
    }

    func components(separatedByCRLF: ()) -> [String] {
        var out: [String] = []
        var cur = ""
        var it = unicodeScalars.makeIterator()
        var pendingCR = false
        while let c = it.next() {
            if pendingCR {
                pendingCR = false
                if c == "\n" { out.append(cur); cur = ""; continue }
                cur.unicodeScalars.append("\r")
            }
            if c == "\r" { pendingCR = true; continue }
            cur.unicodeScalars.append(c)
        }
        if pendingCR { cur.unicodeScalars.append("\r") }
        out.append(cur)
        return out
    }
}
