/// JSON text → `TemplateValue` (integral numbers stay integers, as in docker's typed structs),
/// and `TemplateValue` → JSON text as Go's encoding/json writes it (map keys sorted).
public enum TemplateJSON {
    public struct SyntaxError: Error, CustomStringConvertible {
        public let offset: Int
        public let description: String
    }

    public static func parse(_ bytes: [UInt8]) throws -> TemplateValue {
        var p = Parser(b: bytes)
        p.space()
        let v = try p.value(depth: 0)
        p.space()
        if p.i != bytes.count { throw p.error("trailing data after the JSON value") }
        return v
    }

    public static func parse(_ text: String) throws -> TemplateValue { try parse(Array(text.utf8)) }

    struct Parser {
        let b: [UInt8]
        var i = 0

        func error(_ m: String) -> SyntaxError { SyntaxError(offset: i, description: "invalid JSON at byte \(i): \(m)") }

        mutating func space() {
            while i < b.count, [0x20, 0x0a, 0x0d, 0x09].contains(b[i]) { i += 1 }
        }

        mutating func literal(_ word: String, _ v: TemplateValue) throws -> TemplateValue {
            let w = Array(word.utf8)
            guard i + w.count <= b.count, Array(b[i..<i + w.count]) == w else { throw error("unexpected character") }
            i += w.count
            return v
        }

        mutating func value(depth: Int) throws -> TemplateValue {
            guard depth < 512 else { throw error("nested too deeply") }
            guard i < b.count else { throw error("unexpected end") }
            switch b[i] {
            case UInt8(ascii: "{"):
                i += 1
                var m: [String: TemplateValue] = [:]
                space()
                if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .map(m) }
                while true {
                    space()
                    guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw error("expected a key") }
                    let k = try string()
                    space()
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { throw error("expected ':'") }
                    i += 1
                    space()
                    m[k] = try value(depth: depth + 1)
                    space()
                    guard i < b.count else { throw error("unexpected end") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "}") { i += 1; return .map(m) }
                    throw error("expected ',' or '}'")
                }
            case UInt8(ascii: "["):
                i += 1
                var a: [TemplateValue] = []
                space()
                if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                while true {
                    space()
                    a.append(try value(depth: depth + 1))
                    space()
                    guard i < b.count else { throw error("unexpected end") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                    throw error("expected ',' or ']'")
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "n"): return try literal("null", .null)
            default: return try number()
            }
        }

        mutating func number() throws -> TemplateValue {
            let start = i
            while i < b.count, "+-0123456789.eE".utf8.contains(b[i]) { i += 1 }
            let text = String(decoding: b[start..<i], as: UTF8.self)
            if let n = Int64(text) { return .int(n) }
            guard !text.isEmpty, let d = Double(text) else { i = start; throw error("unexpected character") }
            return .double(d)
        }

        mutating func hex4() throws -> UInt32 {
            guard i + 4 <= b.count, let v = UInt32(String(decoding: b[i..<i + 4], as: UTF8.self), radix: 16) else {
                throw error("bad \\u escape")
            }
            i += 4
            return v
        }

        mutating func string() throws -> String {
            i += 1
            var out: [UInt8] = []
            while true {
                guard i < b.count else { throw error("unterminated string") }
                let c = b[i]
                i += 1
                if c == UInt8(ascii: "\"") { break }
                if c != UInt8(ascii: "\\") { out.append(c); continue }
                guard i < b.count else { throw error("unterminated string") }
                let e = b[i]
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0a)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0d)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0c)
                case UInt8(ascii: "u"):
                    var u = try hex4()
                    if (0xD800..<0xDC00).contains(u), i + 6 <= b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") {
                        i += 2
                        let lo = try hex4()
                        u = 0x10000 + ((u - 0xD800) << 10) + (lo &- 0xDC00 & 0x3FF)
                    }
                    out += Array(String(Character(Unicode.Scalar(u) ?? "\u{FFFD}")).utf8)
                default: out.append(e)
                }
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    /// Go's json.Marshal: maps with sorted keys, `escapeHTML` turns <, > and & into \u003c….
    public static func encode(_ v: TemplateValue, escapeHTML: Bool = false) -> String {
        switch v {
        case .missing, .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d):
            let a = abs(d)
            if a != 0 && (a < 1e-6 || a >= 1e21) {
                // Go writes e-09 as e-9 in JSON.
                var t = GoNumber.format(d)
                for p in ["e-0", "e+0"] where t.contains(p) { t = t.split(separator: "e").first.map(String.init)! + String(p.dropLast()) + String(t.split(separator: "e").last!.dropFirst(2)) }
                return t
            }
            return GoNumber.format(d, exponentFrom: 21)
        case .string(let s): return quote(s, escapeHTML: escapeHTML)
        case .array(let a): return "[" + a.map { encode($0, escapeHTML: escapeHTML) }.joined(separator: ",") + "]"
        case .map(let m):
            return "{" + m.keys.sorted().map { quote($0, escapeHTML: escapeHTML) + ":" + encode(m[$0]!, escapeHTML: escapeHTML) }.joined(separator: ",") + "}"
        case .object(let o): return encode(o.jsonValue, escapeHTML: true)
        }
    }

    static func quote(_ s: String, escapeHTML: Bool) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<" where escapeHTML, ">" where escapeHTML, "&" where escapeHTML, "\u{2028}", "\u{2029}":
                out += "\\u" + hex4(u.value)
            default:
                if u.value < 0x20 { out += "\\u" + hex4(u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    static func hex4(_ v: UInt32) -> String {
        let h = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 4 - h.count)) + h
    }
}

