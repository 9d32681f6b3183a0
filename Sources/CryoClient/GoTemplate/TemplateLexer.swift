/// Splits a Go template into text and actions (`{{ }}`, with the `{{- ` / ` -}}` trim markers
/// and `/* */` comments), and an action into tokens. Positions are byte offsets, so errors
/// name line and column as Go's do.
struct TemplateLexer: Sendable {
    enum Segment: Sendable {
        case text(String)
        /// An action's tokens; `offset` is where its content starts.
        case action([Token], offset: Int)
    }

    enum Kind: Equatable, Sendable {
        case field(String)  // .Name
        case dot
        case variable(String)  // $ or $x
        case identifier(String)
        case string(String)
        case number(String)
        case char(Int64)
        case pipe, leftParen, rightParen, declare, assign, comma
    }

    struct Token: Sendable {
        var kind: Kind
        var start: Int
        var end: Int
        var text: String
    }

    let source: [UInt8]

    init(_ text: String) { source = Array(text.utf8) }

    static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d }
    static func isIdent(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f || c >= 0x80
    }

    /// "template: :LINE: message" (the line of byte `offset`).
    func error(_ message: String, at offset: Int) -> TemplateError {
        TemplateError(kind: .parse, message: "template: :\(line(of: offset)): \(message)")
    }

    func line(of offset: Int) -> Int { 1 + source[..<min(offset, source.count)].filter { $0 == 0x0a }.count }

    /// Go's "line:col" of an executing node: col counts bytes from the line's start.
    func lineColumn(of offset: Int) -> String {
        let o = min(offset, source.count)
        let lineStart = source[..<o].lastIndex(of: 0x0a).map { $0 + 1 } ?? 0
        return "\(line(of: o)):\(o - lineStart)"
    }

    func segments() throws -> [Segment] {
        var out: [Segment] = []
        var text: [UInt8] = []
        var i = 0
        var trimNextText = false
        let s = source
        while i < s.count {
            guard i + 1 < s.count, s[i] == UInt8(ascii: "{"), s[i + 1] == UInt8(ascii: "{") else {
                text.append(s[i])
                i += 1
                continue
            }
            let open = i
            var j = i + 2
            // "{{- " trims the text before; "{{-3}}" is the number -3.
            if j + 1 < s.count, s[j] == UInt8(ascii: "-"), Self.isSpace(s[j + 1]) {
                while let l = text.last, Self.isSpace(l) { text.removeLast() }
                j += 2
            }
            if trimNextText { text = Array(text.drop(while: Self.isSpace)) }
            if !text.isEmpty { out.append(.text(String(decoding: text, as: UTF8.self))) }
            text = []
            // Find the closing "}}" outside quotes and comments.
            var k = j
            var close = -1
            while k < s.count {
                let c = s[k]
                if c == UInt8(ascii: "\"") || c == UInt8(ascii: "`") || c == UInt8(ascii: "'") {
                    k += 1
                    while k < s.count, s[k] != c {
                        if c != UInt8(ascii: "`"), s[k] == UInt8(ascii: "\\") { k += 1 }
                        if c != UInt8(ascii: "`"), k < s.count, s[k] == 0x0a { throw error("unterminated quoted string", at: k) }
                        k += 1
                    }
                    if k >= s.count { throw error("unterminated quoted string", at: k) }
                    k += 1
                    continue
                }
                if c == UInt8(ascii: "/"), k + 1 < s.count, s[k + 1] == UInt8(ascii: "*") {
                    var e = k + 2
                    while e + 1 < s.count, !(s[e] == UInt8(ascii: "*") && s[e + 1] == UInt8(ascii: "/")) { e += 1 }
                    if e + 1 >= s.count { throw error("unclosed comment", at: open) }
                    k = e + 2
                    continue
                }
                if c == UInt8(ascii: "}"), k + 1 < s.count, s[k + 1] == UInt8(ascii: "}") { close = k; break }
                k += 1
            }
            if close < 0 { throw error("unclosed action", at: open) }
            var contentEnd = close
            trimNextText = false
            if contentEnd - 2 >= j, s[contentEnd - 1] == UInt8(ascii: "-"), Self.isSpace(s[contentEnd - 2]) {
                trimNextText = true
                contentEnd -= 2
            }
            let content = Array(s[j..<max(j, contentEnd)])
            let trimmed = content.drop(while: Self.isSpace)
            if trimmed.starts(with: Array("/*".utf8)) {
                // A comment: nothing but the comment may be in the action.
                let body = Array(trimmed.reversed().drop(while: Self.isSpace).reversed())
                if !(body.count >= 4 && body.suffix(2) == Array("*/".utf8)[...]) { throw error("comment ends before closing delimiter", at: open) }
            } else {
                out.append(.action(try tokens(from: j, to: contentEnd), offset: j))
            }
            i = close + 2
        }
        if trimNextText { text = Array(text.drop(while: Self.isSpace)) }
        if !text.isEmpty { out.append(.text(String(decoding: text, as: UTF8.self))) }
        return out
    }

    func tokens(from start: Int, to end: Int) throws -> [Token] {
        var out: [Token] = []
        let s = source
        var i = start
        func add(_ k: Kind, _ a: Int, _ b: Int) {
            out.append(Token(kind: k, start: a, end: b, text: String(decoding: s[a..<b], as: UTF8.self)))
        }
        while i < end {
            let c = s[i]
            if Self.isSpace(c) { i += 1; continue }
            let a = i
            switch c {
            case UInt8(ascii: "|"): i += 1; add(.pipe, a, i)
            case UInt8(ascii: "("): i += 1; add(.leftParen, a, i)
            case UInt8(ascii: ")"): i += 1; add(.rightParen, a, i)
            case UInt8(ascii: ","): i += 1; add(.comma, a, i)
            case UInt8(ascii: "="): i += 1; add(.assign, a, i)
            case UInt8(ascii: ":"):
                guard i + 1 < end, s[i + 1] == UInt8(ascii: "=") else { throw error("expected :=", at: i) }
                i += 2
                add(.declare, a, i)
            case UInt8(ascii: "\""):
                i += 1
                var v: [UInt8] = []
                while i < end, s[i] != UInt8(ascii: "\"") {
                    if s[i] == UInt8(ascii: "\\"), i + 1 < end {
                        i += 1
                        switch s[i] {
                        case UInt8(ascii: "n"): v.append(0x0a)
                        case UInt8(ascii: "t"): v.append(0x09)
                        case UInt8(ascii: "r"): v.append(0x0d)
                        case UInt8(ascii: "\\"): v.append(0x5c)
                        case UInt8(ascii: "\""): v.append(0x22)
                        case UInt8(ascii: "'"): v.append(0x27)
                        case UInt8(ascii: "a"): v.append(0x07)
                        case UInt8(ascii: "b"): v.append(0x08)
                        case UInt8(ascii: "f"): v.append(0x0c)
                        case UInt8(ascii: "v"): v.append(0x0b)
                        case UInt8(ascii: "x"), UInt8(ascii: "u"), UInt8(ascii: "U"):
                            let n = s[i] == UInt8(ascii: "x") ? 2 : s[i] == UInt8(ascii: "u") ? 4 : 8
                            guard i + n < end, let code = UInt32(String(decoding: s[(i + 1)...(i + n)], as: UTF8.self), radix: 16) else {
                                throw error("invalid syntax in quoted string", at: a)
                            }
                            if n == 2 { v.append(UInt8(code)) } else { v += Array(String(Character(Unicode.Scalar(code) ?? "\u{FFFD}")).utf8) }
                            i += n
                        default: throw error("invalid syntax in quoted string", at: a)
                        }
                        i += 1
                    } else {
                        v.append(s[i])
                        i += 1
                    }
                }
                i += 1
                out.append(Token(kind: .string(String(decoding: v, as: UTF8.self)), start: a, end: i, text: String(decoding: s[a..<i], as: UTF8.self)))
            case UInt8(ascii: "`"):
                i += 1
                while i < end, s[i] != UInt8(ascii: "`") { i += 1 }
                i += 1
                out.append(Token(kind: .string(String(decoding: s[(a + 1)..<(i - 1)], as: UTF8.self)), start: a, end: i, text: String(decoding: s[a..<i], as: UTF8.self)))
            case UInt8(ascii: "'"):
                i += 1
                while i < end, s[i] != UInt8(ascii: "'") { if s[i] == UInt8(ascii: "\\") { i += 1 }; i += 1 }
                i += 1
                let inner = String(decoding: s[(a + 1)..<(i - 1)], as: UTF8.self)
                let scalars = Array(inner.unicodeScalars)
                guard scalars.count == 1 else { throw error("malformed character constant: \(String(decoding: s[a..<i], as: UTF8.self))", at: a) }
                add(.char(Int64(scalars[0].value)), a, i)
            case UInt8(ascii: "."):
                i += 1
                if i < end, Self.isIdent(s[i]), !(s[i] >= 0x30 && s[i] <= 0x39) {
                    while i < end, Self.isIdent(s[i]) { i += 1 }
                    add(.field(String(decoding: s[(a + 1)..<i], as: UTF8.self)), a, i)
                } else if i < end, s[i] >= 0x30 && s[i] <= 0x39 {
                    while i < end, Self.isIdent(s[i]) || s[i] == UInt8(ascii: ".") { i += 1 }
                    add(.number(String(decoding: s[a..<i], as: UTF8.self)), a, i)
                } else {
                    add(.dot, a, i)
                }
            case UInt8(ascii: "$"):
                i += 1
                while i < end, Self.isIdent(s[i]) { i += 1 }
                add(.variable(String(decoding: s[a..<i], as: UTF8.self)), a, i)
            case UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                i += 1
                if c == UInt8(ascii: "-") || c == UInt8(ascii: "+") {
                    guard i < end, (s[i] >= 0x30 && s[i] <= 0x39) || s[i] == UInt8(ascii: ".") else {
                        throw error("bad character U+\(hex(c)) '\(Character(Unicode.Scalar(c)))'", at: a)
                    }
                }
                while i < end {
                    let d = s[i]
                    if Self.isIdent(d) || d == UInt8(ascii: ".") { i += 1; continue }
                    // an exponent's sign: 1e-3, 0x1p+2
                    let afterExponent = [UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "p"), UInt8(ascii: "P")].contains(s[i - 1])
                    if d == UInt8(ascii: "-") || d == UInt8(ascii: "+"), afterExponent {
                        i += 1
                        continue
                    }
                    break
                }
                add(.number(String(decoding: s[a..<i], as: UTF8.self)), a, i)
            default:
                if Self.isIdent(c) {
                    while i < end, Self.isIdent(s[i]) { i += 1 }
                    add(.identifier(String(decoding: s[a..<i], as: UTF8.self)), a, i)
                } else {
                    throw error("unexpected \"\(Character(Unicode.Scalar(c)))\" in command", at: a)
                }
            }
        }
        return out
    }

    func hex(_ c: UInt8) -> String {
        let h = String(c, radix: 16, uppercase: true)
        return String(repeating: "0", count: 4 - h.count) + h
    }
}

/// A template that does not parse or fails while running; `message` is Go's text
/// ("template: :1: unclosed action"), the CLI adds docker's prefix.
public struct TemplateError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable { case parse, execute }
    public let kind: Kind
    public let message: String
    public var description: String { message }
}
