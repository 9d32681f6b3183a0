/// The functions a template may call: Go's builtins (eq, ne, lt, le, gt, ge, and, or, not,
/// len, index, slice, print, printf, println, html) and docker's (json, split, join, title,
/// lower, upper, pad, truncate).
enum TemplateFunctions {
    static let names: Set<String> = [
        "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "html",
        "eq", "ne", "lt", "le", "gt", "ge",
        "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
    ]

    /// docker's own functions (the ones a table header leaves as they are).
    static let docker: Set<String> = ["json", "split", "join", "title", "lower", "upper", "pad", "truncate"]

    static func call(_ name: String, _ args: [TemplateValue]) throws -> TemplateValue {
        switch name {
        case "not":
            try count(name, args, 1)
            return .bool(!args[0].isTrue)
        case "len":
            try count(name, args, 1)
            switch args[0] {
            case .string(let s): return .int(Int64(s.utf8.count))
            case .array(let a): return .int(Int64(a.count))
            case .map(let m): return .int(Int64(m.count))
            default: throw TemplateFunctionError(calling: true, message: "len of type \(args[0].goTypeName)")
            }
        case "index": return try index(args)
        case "slice": return try slice(args)
        case "print": return .string(GoPrintf.sprint(args))
        case "println": return .string(args.map(\.printed).joined(separator: " ") + "\n")
        case "printf":
            guard let f = args.first else { throw wrongCount(name, want: "at least 1", got: 0) }
            return .string(GoPrintf.format(try string(f), Array(args.dropFirst())))
        case "html": return .string(html(GoPrintf.sprint(args)))
        case "eq":
            guard args.count >= 2 else { throw TemplateFunctionError(calling: true, message: "missing argument for comparison") }
            for b in args.dropFirst() where try compare(args[0], b) == 0 { return .bool(true) }
            return .bool(false)
        case "ne":
            try count(name, args, 2)
            return .bool(try compare(args[0], args[1]) != 0)
        case "lt", "le", "gt", "ge":
            try count(name, args, 2)
            let c = try compare(args[0], args[1], ordered: true)
            switch name {
            case "lt": return .bool(c < 0)
            case "le": return .bool(c <= 0)
            case "gt": return .bool(c > 0)
            default: return .bool(c >= 0)
            }
        case "json":
            try count(name, args, 1)
            return .string(TemplateJSON.encode(args[0]))
        case "split":
            try count(name, args, 2)
            return .array(goSplit(try string(args[0]), try string(args[1])).map { .string($0) })
        case "join":
            try count(name, args, 2)
            return .string(try strings(args[0]).joined(separator: try string(args[1])))
        case "title":
            try count(name, args, 1)
            return .string(title(try string(args[0])))
        case "lower":
            try count(name, args, 1)
            return .string(try string(args[0]).lowercased())
        case "upper":
            try count(name, args, 1)
            return .string(try string(args[0]).uppercased())
        case "pad":
            try count(name, args, 3)
            let s = try string(args[0])
            return .string(String(repeating: " ", count: max(0, try int(args[1]))) + s + String(repeating: " ", count: max(0, try int(args[2]))))
        case "truncate":
            try count(name, args, 2)
            let s = try string(args[0])
            let n = try int(args[1])
            // docker truncates bytes; cut at a character boundary instead of splitting one.
            guard s.utf8.count > n, n >= 0 else { return .string(s) }
            var out = ""
            for ch in s where out.utf8.count + ch.utf8.count <= n { out.append(ch) }
            return .string(out)
        default:
            throw TemplateFunctionError(calling: false, message: "function \"\(name)\" not defined")
        }
    }

    static func count(_ name: String, _ args: [TemplateValue], _ n: Int) throws {
        if args.count != n { throw wrongCount(name, want: String(n), got: args.count) }
    }

    static func wrongCount(_ name: String, want: String, got: Int) -> TemplateFunctionError {
        TemplateFunctionError(calling: false, message: "wrong number of args for \(name): want \(want) got \(got)")
    }

    static func string(_ v: TemplateValue) throws -> String {
        if case .string(let s) = v { return s }
        throw TemplateFunctionError(calling: false, message: "wrong type for value; expected string; got \(v.goTypeName)")
    }

    static func int(_ v: TemplateValue) throws -> Int {
        if case .int(let i) = v { return Int(i) }
        throw TemplateFunctionError(calling: false, message: "wrong type for value; expected int; got \(v.goTypeName)")
    }

    /// A []string argument: an array whose elements are all strings.
    static func strings(_ v: TemplateValue) throws -> [String] {
        if case .array(let a) = v {
            let s = a.compactMap(\.stringValue)
            if s.count == a.count { return s }
        }
        throw TemplateFunctionError(calling: false, message: "wrong type for value; expected []string; got \(v.goTypeName)")
    }

    static func index(_ args: [TemplateValue]) throws -> TemplateValue {
        guard var v = args.first else { throw wrongCount("index", want: "at least 1", got: 0) }
        for key in args.dropFirst() {
            switch v {
            case .array(let a):
                let i = try position(key, a.count)
                guard i < a.count else { throw TemplateFunctionError(calling: true, message: "index out of range: \(i)") }
                v = a[i]
            case .string(let s):
                let b = Array(s.utf8)
                let i = try position(key, b.count)
                guard i < b.count else { throw TemplateFunctionError(calling: true, message: "index out of range: \(i)") }
                v = .int(Int64(b[i]))
            case .map(let m):
                guard case .string(let k) = key else {
                    throw TemplateFunctionError(calling: true, message: "value has type \(key.goTypeName); should be string")
                }
                // A missing key gives the element type's zero value: "" for a map of strings
                // (docker's typed labels), no value for anything else.
                v = m[k] ?? (m.values.allSatisfy { $0.stringValue != nil } && !m.isEmpty ? .string("") : .missing)
            case .missing, .null:
                throw TemplateFunctionError(calling: true, message: "index of untyped nil")
            default:
                throw TemplateFunctionError(calling: true, message: "can't index item of type \(v.goTypeName)")
            }
        }
        return v
    }

    static func position(_ key: TemplateValue, _ count: Int) throws -> Int {
        guard case .int(let i) = key else {
            throw TemplateFunctionError(calling: true, message: "cannot index slice/array with type \(key.goTypeName)")
        }
        if i < 0 { throw TemplateFunctionError(calling: true, message: "index out of range: \(i)") }
        return Int(i)
    }

    static func slice(_ args: [TemplateValue]) throws -> TemplateValue {
        guard let v = args.first else { throw wrongCount("slice", want: "at least 1", got: 0) }
        let bounds = try args.dropFirst().map { try position($0, Int.max) }
        if bounds.count > 2 { throw TemplateFunctionError(calling: true, message: "too many slice indexes: \(bounds.count)") }
        func cut<T>(_ a: [T]) throws -> [T] {
            let lo = bounds.first ?? 0
            let hi = bounds.count > 1 ? bounds[1] : a.count
            guard lo <= hi, hi <= a.count else { throw TemplateFunctionError(calling: true, message: "index out of range: \(hi > a.count ? hi : lo)") }
            return Array(a[lo..<hi])
        }
        switch v {
        case .string(let s): return .string(String(decoding: try cut(Array(s.utf8)), as: UTF8.self))
        case .array(let a): return .array(try cut(a))
        default: throw TemplateFunctionError(calling: true, message: "can't slice item of type \(v.goTypeName)")
        }
    }

    /// Go's eq/lt: same basic kinds only (integers and floats compare by value here, as
    /// docker's JSON-backed values need); strings with strings; bools only for equality.
    static func compare(_ a: TemplateValue, _ b: TemplateValue, ordered: Bool = false) throws -> Int {
        func num(_ v: TemplateValue) -> Double? {
            switch v {
            case .int(let i): return Double(i)
            case .double(let d): return d
            default: return nil
            }
        }
        if case .int(let x) = a, case .int(let y) = b { return x < y ? -1 : x > y ? 1 : 0 }
        if let x = num(a), let y = num(b) { return x < y ? -1 : x > y ? 1 : 0 }
        if case .string(let x) = a, case .string(let y) = b { return x < y ? -1 : x > y ? 1 : 0 }
        if case .bool(let x) = a, case .bool(let y) = b {
            if ordered { throw TemplateFunctionError(calling: true, message: "invalid type for comparison") }
            return x == y ? 0 : 1
        }
        let basic: (TemplateValue) -> Bool = {
            switch $0 {
            case .bool, .int, .double, .string: return true
            default: return false
            }
        }
        if basic(a) && basic(b) { throw TemplateFunctionError(calling: true, message: "incompatible types for comparison") }
        if !ordered {
            switch (a, b) {
            case (.null, .null), (.missing, .missing), (.null, .missing), (.missing, .null): return 0
            case (.null, _), (.missing, _), (_, .null), (_, .missing): return 1
            default: break
            }
        }
        throw TemplateFunctionError(calling: true, message: ordered ? "invalid type for comparison" : "non-comparable type \(a.printed): \(a.goTypeName)")
    }

    /// strings.Split: an empty separator splits into characters.
    static func goSplit(_ s: String, _ sep: String) -> [String] {
        if sep.isEmpty { return s.map { String($0) } }
        var parts: [String] = []
        var rest = Substring(s)
        while let r = rest.firstRange(of: sep) {
            parts.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }

    /// strings.Title: the first letter of each word upper-cased (letters, digits, _ and '
    /// continue a word).
    static func title(_ s: String) -> String {
        var out = ""
        var previousSeparates = true
        for ch in s {
            out += previousSeparates ? String(ch).uppercased() : String(ch)
            previousSeparates = !(ch.isLetter || ch.isNumber || ch == "_" || ch == "'")
        }
        return out
    }

    static func html(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "'": out += "&#39;"
            case "\"": out += "&#34;"
            default: out.append(ch)
            }
        }
        return out
    }
}

/// A function's failure; `calling` adds Go's "error calling NAME: " prefix.
struct TemplateFunctionError: Error {
    var calling: Bool
    var message: String
}
