/// One challenge of a `WWW-Authenticate` header: `Basic realm="r"` or
/// `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`.
/// A header may hold several challenges separated by commas; parameter values are tokens
/// or quoted strings with backslash escapes (RFC 7235).
public struct AuthChallenge: Sendable, Equatable {
    /// Lowercased: "basic", "bearer".
    public var scheme: String
    /// Parameter names lowercased.
    public var parameters: [String: String]

    public init(scheme: String, parameters: [String: String]) {
        self.scheme = scheme
        self.parameters = parameters
    }

    /// Every challenge in the header values (unknown schemes included; malformed parts skipped).
    public static func parse(_ headers: [String]) -> [AuthChallenge] {
        headers.flatMap(parse(header:))
    }

    static func parse(header: String) -> [AuthChallenge] {
        var s = Scanner(Array(header.utf8))
        var out: [AuthChallenge] = []
        while true {
            s.skip { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: ",") }
            guard let scheme = s.token(), !scheme.isEmpty else { break }
            var params: [String: String] = [:]
            while true {
                let mark = s.position
                s.skipSpaces()
                if s.peek() == UInt8(ascii: ",") { s.advance(); s.skipSpaces() }
                guard let name = s.token(), !name.isEmpty else { s.position = mark; break }
                s.skipSpaces()
                guard s.peek() == UInt8(ascii: "=") else { s.position = mark; break }  // the next challenge's scheme
                s.advance()
                s.skipSpaces()
                let value = s.peek() == UInt8(ascii: "\"") ? s.quoted() : (s.token() ?? "")
                params[name.lowercased()] = value
            }
            out.append(AuthChallenge(scheme: scheme.lowercased(), parameters: params))
            if s.atEnd { break }
        }
        return out
    }

    struct Scanner {
        let bytes: [UInt8]
        var position = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        var atEnd: Bool { position >= bytes.count }
        func peek() -> UInt8? { atEnd ? nil : bytes[position] }
        mutating func advance() { position += 1 }
        mutating func skip(while pred: (UInt8) -> Bool) { while let c = peek(), pred(c) { advance() } }
        mutating func skipSpaces() { skip { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") } }
        /// An RFC 7230 token (also takes `/` and `:` so that unquoted URLs survive).
        mutating func token() -> String? {
            let start = position
            skip { c in
                c > 0x20 && c < 0x7f && c != UInt8(ascii: ",") && c != UInt8(ascii: "=") && c != UInt8(ascii: "\"")
                    && c != UInt8(ascii: " ")
            }
            return start == position ? nil : String(decoding: bytes[start..<position], as: UTF8.self)
        }
        mutating func quoted() -> String {
            advance()  // opening quote
            var out: [UInt8] = []
            while let c = peek() {
                advance()
                if c == UInt8(ascii: "\\"), let n = peek() { out.append(n); advance(); continue }
                if c == UInt8(ascii: "\"") { break }
                out.append(c)
            }
            return String(decoding: out, as: UTF8.self)
        }
    }
}
