/// Output formatting the docker CLI uses: tables, human durations and sizes, ellipsis,
/// indented JSON. Pure, unit-tested.
public enum Format {
    /// docker's go-units HumanDuration.
    public static func duration(seconds: Double) -> String {
        let s = Int(seconds)
        if s < 1 { return "Less than a second" }
        if s == 1 { return "1 second" }
        if s < 60 { return "\(s) seconds" }
        let m = s / 60
        if m == 1 { return "About a minute" }
        if m < 60 { return "\(m) minutes" }
        let h = Int((seconds / 3600).rounded())
        if h == 1 { return "About an hour" }
        if h < 48 { return "\(h) hours" }
        if h < 24 * 7 * 2 { return "\(h / 24) days" }
        if h < 24 * 30 * 2 { return "\(h / 24 / 7) weeks" }
        if h < 24 * 365 * 2 { return "\(h / 24 / 30) months" }
        return "\(s / 3600 / 24 / 365) years"
    }

    /// docker's HumanSizeWithPrecision(size, 3): decimal units, 3 significant digits.
    public static func size(_ bytes: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
        var v = Double(bytes)
        var i = 0
        while v >= 1000 && i < units.count - 1 { v /= 1000; i += 1 }
        return significant(v, 3) + units[i]
    }

    /// %.Ng without exponent: 4.264 → "4.26", 42.0 → "42", 426.4 → "426".
    public static func significant(_ v: Double, _ digits: Int) -> String {
        if v == 0 { return "0" }
        var intDigits = 1
        var x = abs(v)
        while x >= 10 { x /= 10; intDigits += 1 }
        let decimals = max(0, digits - intDigits)
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let rounded = (v * scale).rounded() / scale
        return fixed(rounded, decimals, trimZeros: true)
    }

    /// "12.3 ms" / "1.23 s".
    public static func millis(_ ms: Double) -> String {
        ms >= 1000 ? fixed(ms / 1000, 2) + " s" : fixed(ms, ms < 10 ? 2 : 1) + " ms"
    }

    public static func fixed(_ v: Double, _ decimals: Int, trimZeros: Bool = false) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let n = Int64((abs(v) * scale).rounded())
        let whole = n / Int64(scale)
        var frac = decimals > 0 ? String(n % Int64(scale)) : ""
        while frac.count < decimals { frac = "0" + frac }
        if trimZeros { while frac.hasSuffix("0") { frac.removeLast() } }
        return (v < 0 && n != 0 ? "-" : "") + String(whole) + (frac.isEmpty ? "" : "." + frac)
    }

    /// docker's formatter.Ellipsis: at most `max` characters, the last one "…".
    public static func ellipsis(_ s: String, _ max: Int) -> String {
        guard s.count > max else { return s }
        return String(s.prefix(max - 1)) + "…"
    }

    /// A table as docker's tabwriter prints it (minwidth 10, padding 3; last column
    /// unpadded).
    public static func table(_ rows: [[String]]) -> String {
        guard let cols = rows.map(\.count).max(), cols > 0 else { return "" }
        var widths = [Int](repeating: 0, count: cols)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], max(10, c.count + 3)) } }
        var out = ""
        for r in rows {
            var line = ""
            for (i, c) in r.enumerated() {
                if i == r.count - 1 { line += c } else { line += c + String(repeating: " ", count: widths[i] - c.count) }
            }
            while line.hasSuffix(" ") { line.removeLast() }
            out += line + "\n"
        }
        return out
    }

    /// Short id: 12 hex characters, without "sha256:".
    public static func shortID(_ id: String) -> String {
        let s = id.hasPrefix("sha256:") ? String(id.dropFirst(7)) : id
        return String(s.prefix(12))
    }

    /// Re-indents compact JSON with 4 spaces (like docker inspect), keeping key order.
    public static func indentJSON(_ bytes: [UInt8], indent: String = "    ") -> String {
        var out: [UInt8] = []
        var level = 0
        var inString = false
        var escaped = false
        let ind = Array(indent.utf8)
        func newline() { out.append(0x0a); for _ in 0..<level { out += ind } }
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if inString {
                out.append(b)
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                i += 1
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true; out.append(b)
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                // Empty containers stay on one line: {} and [].
                var j = i + 1
                while j < bytes.count, [0x20, 0x0a, 0x0d, 0x09].contains(bytes[j]) { j += 1 }
                let close: UInt8 = b == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                if j < bytes.count && bytes[j] == close {
                    out += [b, close]
                    i = j
                } else {
                    out.append(b)
                    level += 1
                    newline()
                }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                level = max(0, level - 1)
                newline()
                out.append(b)
            case UInt8(ascii: ","): out.append(b); newline()
            case UInt8(ascii: ":"): out += [b, 0x20]
            case 0x20, 0x0a, 0x0d, 0x09: break
            default: out.append(b)
            }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Splits "repo:tag" (a ":" after the last "/"); no tag → "latest".
    public static func splitReference(_ ref: String) -> (repo: String, tag: String) {
        if let colon = ref.lastIndex(of: ":"), !ref[colon...].contains("/") {
            return (String(ref[..<colon]), String(ref[ref.index(after: colon)...]))
        }
        return (ref, "latest")
    }

    /// docker ps's PORTS column: "0.0.0.0:8080->80/tcp, 127.0.0.1:9000->90/udp" (sorted
    /// by container port); an unpublished port is shown as "80/tcp".
    public static func ports(_ ports: [PortJSON]) -> String {
        ports.sorted { ($0.PrivatePort, $0.Type ?? "", $0.PublicPort ?? 0) < ($1.PrivatePort, $1.Type ?? "", $1.PublicPort ?? 0) }
            .map { p in
                let cont = "\(p.PrivatePort)/\(p.Type ?? "tcp")"
                guard let pub = p.PublicPort, pub != 0 else { return cont }
                return "\(p.IP.flatMap { $0.isEmpty ? nil : $0 } ?? "0.0.0.0"):\(pub)->\(cont)"
            }
            .joined(separator: ", ")
    }
}
