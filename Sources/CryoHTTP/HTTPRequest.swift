/// One parsed HTTP request head.
public struct HTTPRequest: Sendable {
    /// "GET", "HEAD", "POST", "DELETE", ...
    public var method: String
    /// Raw request target, e.g. "/v1.50/containers/json?all=1".
    public var uri: String
    /// Percent-decoded path part, e.g. "/v1.50/containers/json".
    public var path: String
    /// Percent-decoded query ('+' means space); the last value of a repeated name wins.
    public var query: [String: String]
    /// Header fields in arrival order, names as sent.
    public var headers: [(name: String, value: String)]
    /// HTTP version of the request, e.g. (1, 1).
    public var version: (major: Int, minor: Int)

    public init(
        method: String,
        uri: String,
        headers: [(name: String, value: String)] = [],
        version: (major: Int, minor: Int) = (1, 1)
    ) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.version = version
        let (rawPath, rawQuery) = Self.split(uri)
        self.path = Self.percentDecode(rawPath, plusIsSpace: false)
        self.query = Self.parseQuery(rawQuery)
    }

    /// The value of the first header named `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first(where: { $0.name.lowercased() == lower })?.value
    }

    /// All values of headers named `name` (case-insensitive), in order.
    public func headerValues(_ name: String) -> [String] {
        let lower = name.lowercased()
        return headers.filter { $0.name.lowercased() == lower }.map(\.value)
    }

    /// `Connection` contains the token "upgrade" (case-insensitive) and an `Upgrade` header is present.
    public var wantsUpgrade: Bool {
        guard header("Upgrade") != nil else { return false }
        return headerValues("Connection").contains { value in
            value.split(separator: ",").contains {
                $0.trimmingSpaces().lowercased() == "upgrade"
            }
        }
    }

    static func split(_ uri: String) -> (path: Substring, query: Substring) {
        var target = Substring(uri)
        if let hash = target.firstIndex(of: "#") { target = target[..<hash] }
        guard let q = target.firstIndex(of: "?") else { return (target, "") }
        return (target[..<q], target[target.index(after: q)...])
    }

    static func parseQuery(_ query: Substring) -> [String: String] {
        var result: [String: String] = [:]
        for (name, value) in queryPairs(query) { result[name] = value }
        return result
    }

    /// Every value of the query parameter `name`, in order (`docker save a b` sends
    /// `names=a&names=b`; `query` keeps only the last).
    public func queryValues(_ name: String) -> [String] {
        Self.queryPairs(Self.split(uri).query).filter { $0.0 == name }.map(\.1)
    }

    static func queryPairs(_ query: Substring) -> [(String, String)] {
        query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            guard let eq = pair.firstIndex(of: "=") else { return (percentDecode(pair, plusIsSpace: true), "") }
            return (percentDecode(pair[..<eq], plusIsSpace: true), percentDecode(pair[pair.index(after: eq)...], plusIsSpace: true))
        }
    }

    /// Decodes %XX escapes (invalid escapes are kept literally); invalid UTF-8 is repaired.
    static func percentDecode(_ s: Substring, plusIsSpace: Bool) -> String {
        let utf8 = Array(s.utf8)
        guard utf8.contains(UInt8(ascii: "%")) || (plusIsSpace && utf8.contains(UInt8(ascii: "+"))) else {
            return String(s)
        }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count)
        var i = 0
        while i < utf8.count {
            let c = utf8[i]
            if c == UInt8(ascii: "%"), i + 2 < utf8.count, let hi = hexValue(utf8[i + 1]), let lo = hexValue(utf8[i + 2]) {
                out.append(hi << 4 | lo)
                i += 3
            } else if plusIsSpace && c == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
                i += 1
            } else {
                out.append(c)
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}

public enum HTTPError: Error, Sendable, CustomStringConvertible {
    /// The request body is larger than the limit given to `collectBody` (the associated value is that limit).
    case bodyTooLarge(Int)
    /// The request body could not be decoded (e.g. broken chunked framing, or the client went away mid-body).
    case malformedBody(String)
    /// The client connection is closed (or the server is shutting down).
    case connectionClosed
    /// An exchange method was called out of order (e.g. `respond` twice, `write` before `startStream`).
    case invalidState(String)

    /// The answer's message (a server's codes and statuses for these are its own: cryod's
    /// are in CryoAPI).
    public var description: String {
        switch self {
        case .bodyTooLarge(let limit): return "request body is too large: this endpoint accepts at most \(limit) bytes"
        case .malformedBody(let why): return "malformed request body: \(why)"
        case .connectionClosed: return "the client connection is closed"
        case .invalidState(let why): return why
        }
    }
}
