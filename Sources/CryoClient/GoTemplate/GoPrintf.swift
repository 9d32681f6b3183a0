/// fmt.Sprintf / fmt.Sprint for templates: verbs v s d q t x X o b c e f g, flags - + 0 and
/// space, width and precision (also *), with Go's %!verb(type=value) for a wrong argument.
enum GoPrintf {
    static func sprint(_ args: [TemplateValue]) -> String {
        var out = ""
        for (i, a) in args.enumerated() {
            // Sprint puts a space between operands when neither is a string.
            if i > 0, args[i - 1].stringValue == nil, a.stringValue == nil { out += " " }
            out += a.printed
        }
        return out
    }

    static func format(_ f: String, _ args: [TemplateValue]) -> String {
        let c = Array(f.unicodeScalars)
        var out = ""
        var argIndex = 0
        var i = 0
        while i < c.count {
            if c[i] != "%" {
                out.unicodeScalars.append(c[i])
                i += 1
                continue
            }
            i += 1
            if i >= c.count { out += "%!(NOVERB)"; break }
            if c[i] == "%" { out += "%"; i += 1; continue }
            var minus = false, plus = false, zero = false, space = false, sharp = false
            flags: while i < c.count {
                switch c[i] {
                case "-": minus = true
                case "+": plus = true
                case "0": zero = true
                case " ": space = true
                case "#": sharp = true
                default: break flags
                }
                i += 1
            }
            func number() -> Int? {
                if i < c.count, c[i] == "*" {
                    i += 1
                    if argIndex < args.count, case .int(let n) = args[argIndex] { argIndex += 1; return Int(n) }
                    argIndex += 1
                    return nil
                }
                var n: Int?
                while i < c.count, let d = Int(String(c[i])), c[i].isASCII { n = (n ?? 0) * 10 + d; i += 1 }
                return n
            }
            var width = number()
            if let w = width, w < 0 { minus = true; width = -w }
            var precision: Int?
            if i < c.count, c[i] == "." {
                i += 1
                precision = number() ?? 0
            }
            guard i < c.count else { out += "%!(NOVERB)"; break }
            let verb = Character(c[i])
            i += 1
            guard argIndex < args.count else { out += "%!\(verb)(MISSING)"; continue }
            let arg = args[argIndex]
            argIndex += 1
            guard var s = render(verb, arg, precision: precision, plus: plus, space: space, sharp: sharp) else {
                out += "%!\(verb)(\(arg.goTypeName)=\(arg.printed))"
                continue
            }
            if let w = width, s.count < w {
                let pad = w - s.count
                if minus {
                    s += String(repeating: " ", count: pad)
                } else if zero, "dfegxXob".contains(verb), !(arg.stringValue != nil) {
                    let signed = s.hasPrefix("-") || s.hasPrefix("+")
                    let sign = signed ? String(s.removeFirst()) : ""
                    s = sign + String(repeating: "0", count: pad) + s
                } else {
                    s = String(repeating: " ", count: pad) + s
                }
            }
            out += s
        }
        if argIndex < args.count {
            out += "%!(EXTRA " + args[argIndex...].map { "\($0.goTypeName)=\($0.printed)" }.joined(separator: ", ") + ")"
        }
        return out
    }

    static func render(_ verb: Character, _ v: TemplateValue, precision: Int?, plus: Bool, space: Bool, sharp: Bool) -> String? {
        func signed(_ s: String, negative: Bool) -> String {
            negative ? s : plus ? "+" + s : space ? " " + s : s
        }
        switch (verb, v) {
        case ("v", .string(let s)), ("s", .string(let s)):
            return precision.map { String(s.prefix($0)) } ?? s
        case ("v", .double(let d)):
            return precision.map { fixed(d, $0) } ?? signed(GoNumber.format(d), negative: d < 0)
        case ("v", _): return sharp ? TemplateJSON.encode(v) : v.printed
        case ("s", .array), ("s", .map): return v.printed
        case ("q", .string(let s)): return TemplateJSON.quote(s, escapeHTML: false)
        case ("q", .int(let n)):
            return "'" + String(Character(Unicode.Scalar(UInt32(truncatingIfNeeded: n)) ?? "\u{FFFD}")) + "'"
        case ("q", .array(let a)): return "[" + a.map { render("q", $0, precision: nil, plus: false, space: false, sharp: false) ?? $0.printed }.joined(separator: " ") + "]"
        case ("t", .bool(let b)): return b ? "true" : "false"
        case ("d", .int(let n)): return signed(String(n), negative: n < 0)
        case ("d", .array(let a)): return "[" + a.map { render("d", $0, precision: nil, plus: plus, space: space, sharp: false) ?? "%!d(\($0.goTypeName)=\($0.printed))" }.joined(separator: " ") + "]"
        case ("x", .int(let n)), ("X", .int(let n)), ("o", .int(let n)), ("b", .int(let n)):
            let radix = verb == "o" ? 8 : verb == "b" ? 2 : 16
            var s = String(n.magnitude, radix: radix, uppercase: verb == "X")
            if sharp { s = (radix == 16 ? (verb == "X" ? "0X" : "0x") : radix == 8 ? "0" : "") + s }
            return n < 0 ? "-" + s : signed(s, negative: false)
        case ("x", .string(let s)), ("X", .string(let s)):
            return s.utf8.map { b in let h = String(b, radix: 16, uppercase: verb == "X"); return h.count == 1 ? "0" + h : h }.joined()
        case ("c", .int(let n)): return String(Character(Unicode.Scalar(UInt32(truncatingIfNeeded: n)) ?? "\u{FFFD}"))
        case ("f", .double(let d)), ("F", .double(let d)): return signed(fixed(d, precision ?? 6), negative: d < 0)
        case ("f", .int), ("e", .int), ("g", .int): return nil
        case ("e", .double(let d)): return signed(exponent(d, precision ?? 6), negative: d < 0)
        case ("g", .double(let d)): return signed(precision == nil ? GoNumber.format(d) : String(d), negative: d < 0)
        default: return nil
        }
    }

    static func fixed(_ d: Double, _ p: Int) -> String {
        Format.fixed(d, p)
    }

    static func exponent(_ d: Double, _ p: Int) -> String {
        if d == 0 { return Format.fixed(0, p) + "e+00" }
        var e = 0
        var m = abs(d)
        while m >= 10 { m /= 10; e += 1 }
        while m < 1 { m *= 10; e -= 1 }
        var digits = Format.fixed(m, p)
        if digits.hasPrefix("10") { m /= 10; e += 1; digits = Format.fixed(m, p) }
        let ae = abs(e)
        return (d < 0 ? "-" : "") + digits + "e" + (e < 0 ? "-" : "+") + (ae < 10 ? "0" : "") + String(ae)
    }
}
