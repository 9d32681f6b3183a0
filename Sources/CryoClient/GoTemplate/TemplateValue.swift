/// The data a Go template runs over: JSON's values (decoded by `TemplateJSON`) plus objects
/// that compute docker's fields (`TemplateObject`), printed the way Go's fmt prints them.
public indirect enum TemplateValue: Sendable {
    /// A map's missing key or an unset variable: Go prints "<no value>".
    case missing
    /// JSON null (a nil interface, slice or pointer): Go prints "<nil>".
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([TemplateValue])
    case map([String: TemplateValue])
    case object(any TemplateObject)

    /// Go's truth: false, 0, nil and empty strings, slices and maps are false.
    public var isTrue: Bool {
        switch self {
        case .missing, .null: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .map(let m): return !m.isEmpty
        case .object: return true
        }
    }

    /// The Go type name errors mention (the names docker's messages show for JSON data).
    public var goTypeName: String {
        switch self {
        case .missing, .null: return "<nil>"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float64"
        case .string: return "string"
        case .array: return "[]interface {}"
        case .map: return "map[string]interface {}"
        case .object(let o): return o.typeName
        }
    }

    /// fmt's %v: strings as they are, slices "[a b]", maps "map[k:v]" in key order.
    public var printed: String {
        switch self {
        case .missing: return "<no value>"
        case .null: return "<nil>"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return GoNumber.format(d)
        case .string(let s): return s
        case .array(let a): return "[" + a.map(\.printedInside).joined(separator: " ") + "]"
        case .map(let m): return "map[" + m.keys.sorted().map { "\($0):\(m[$0]!.printedInside)" }.joined(separator: " ") + "]"
        case .object(let o): return o.printed
        }
    }

    /// Inside a slice or map, a nil interface prints "<nil>", not "<no value>".
    var printedInside: String {
        if case .missing = self { return "<nil>" }
        return printed
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }
}

/// A value with named fields computed on demand: docker's per-command contexts (ps, images,
/// networks) and their table headers. Unknown names are errors, as for Go structs.
public protocol TemplateObject: Sendable {
    /// As Go names the type in "can't evaluate field X in type T".
    var typeName: String { get }
    /// The field's value, nil when there is no such field; `args` for methods like `.Label "k"`.
    func field(_ name: String, args: [TemplateValue]) throws -> TemplateValue?
    /// What `{{json .}}` prints: every field without arguments.
    var jsonValue: TemplateValue { get }
    /// What `{{.}}` prints.
    var printed: String { get }
}

extension TemplateObject {
    public var printed: String { jsonValue.printed }
}

/// Go's formatting of float64: %v (strconv 'g', shortest) switches to the exponent form
/// below 1e-4 and from 1e6 on; encoding/json (`exponentFrom: 21`) from 1e21.
enum GoNumber {
    static func format(_ d: Double, exponentFrom: Int = 6) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Inf" : "+Inf" }
        if d == 0 { return d.sign == .minus ? "-0" : "0" }
        let (neg, digits, exp) = shortest(d)
        let sign = neg ? "-" : ""
        if exp < -4 || exp >= exponentFrom {
            var m = String(digits.first!)
            if digits.count > 1 { m += "." + digits.dropFirst() }
            let e = abs(exp)
            return sign + m + "e" + (exp < 0 ? "-" : "+") + (e < 10 ? "0" : "") + String(e)
        }
        let point = exp + 1
        if point <= 0 { return sign + "0." + String(repeating: "0", count: -point) + digits }
        if point >= digits.count { return sign + digits + String(repeating: "0", count: point - digits.count) }
        return sign + String(digits.prefix(point)) + "." + String(digits.dropFirst(point))
    }

    /// Shortest round-trip digits and decimal exponent (d = 0.DIGITS × 10^(exp+1)), from Swift's
    /// own shortest description.
    static func shortest(_ d: Double) -> (Bool, String, Int) {
        var s = "\(abs(d))"
        var exp = 0
        if let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exp = Int(s[s.index(after: e)...]) ?? 0
            s = String(s[..<e])
        }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        let intPart = String(parts[0])
        let frac = parts.count > 1 ? String(parts[1]) : ""
        var digits = intPart + frac
        var pointPos = intPart.count + exp  // digits before the decimal point
        while digits.hasPrefix("0") && digits.count > 1 { digits.removeFirst(); pointPos -= 1 }
        while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
        return (d < 0, digits, pointPos - 1)
    }
}
