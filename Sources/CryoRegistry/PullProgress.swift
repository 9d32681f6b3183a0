import Glibc

/// One line of a pull's (or push's) JSON progress stream, as dockerd writes it (moby
/// pkg/jsonmessage): fields omitted when empty, in the order `status, progressDetail,
/// progress, id, errorDetail, error`, `>` written as `\u003e`, each line ended by `\r\n`.
public struct ProgressLine: Sendable, Equatable {
    public var status: String?
    /// `progressDetail`: present (maybe `{}`) on per-layer updates, absent on plain messages.
    public var detail: (current: Int64, total: Int64)??
    public var id: String?
    public var error: String?
    /// `aux`: a JSON object for the client (a push's tag, digest and size), written verbatim.
    public var aux: String?

    public init(status: String? = nil, detail: (current: Int64, total: Int64)?? = nil, id: String? = nil, error: String? = nil,
                aux: String? = nil) {
        self.status = status
        self.detail = detail
        self.id = id
        self.error = error
        self.aux = aux
    }

    /// `progress.Message`: `{"status":M[,"id":ID]}`
    public static func message(_ status: String, id: String? = nil) -> ProgressLine { ProgressLine(status: status, id: id) }
    /// `progress.Update`: `{"status":A,"progressDetail":{},"id":ID}`
    public static func update(_ status: String, id: String) -> ProgressLine { ProgressLine(status: status, detail: .some(nil), id: id) }
    /// A byte count with its bar.
    public static func bytes(_ status: String, id: String, current: Int64, total: Int64) -> ProgressLine {
        ProgressLine(status: status, detail: .some((current, total)), id: id)
    }
    public static func failure(_ message: String) -> ProgressLine { ProgressLine(error: message) }
    /// `{"progressDetail":{},"aux":OBJECT}` (the push's last line).
    public static func aux(_ object: String) -> ProgressLine { ProgressLine(detail: .some(nil), aux: object) }

    public static func == (a: ProgressLine, b: ProgressLine) -> Bool { a.encoded() == b.encoded() }

    public func encoded() -> [UInt8] {
        var fields: [String] = []
        if let status { fields.append("\"status\":" + Self.quote(status)) }
        if let detail {
            if let (current, total) = detail {
                var parts: [String] = []
                if current > 0 { parts.append("\"current\":\(current)") }
                if total > 0 { parts.append("\"total\":\(total)") }
                fields.append("\"progressDetail\":{" + parts.joined(separator: ",") + "}")
                let bar = Self.bar(current: current, total: total)
                if !bar.isEmpty { fields.append("\"progress\":" + Self.quote(bar)) }
            } else {
                fields.append("\"progressDetail\":{}")
            }
        }
        if let id { fields.append("\"id\":" + Self.quote(id)) }
        if let error {
            fields.append("\"errorDetail\":{\"message\":" + Self.quote(error) + "}")
            fields.append("\"error\":" + Self.quote(error))
        }
        if let aux { fields.append("\"aux\":" + aux) }
        return Array(("{" + fields.joined(separator: ",") + "}\r\n").utf8)
    }

    /// dockerd's bar: `[====>      ]  1.2MB/3.4MB` (50 wide, sizes in base-1000 units).
    static func bar(current: Int64, total: Int64) -> String {
        if current <= 0 && total <= 0 { return "" }
        let cur = humanSize(current)
        if total <= 0 { return String(repeating: " ", count: max(0, 8 - cur.count)) + cur }
        var filled = Int(Double(current) / Double(total) * 100) / 2
        filled = min(max(filled, 0), 50)
        let box = "[" + String(repeating: "=", count: filled) + ">" + String(repeating: " ", count: 50 - filled) + "] "
        return box + String(repeating: " ", count: max(0, 8 - cur.count)) + cur + "/" + humanSize(total)
    }

    /// go-units HumanSize: `%.4g` and B, kB, MB, GB, TB (base 1000).
    static func humanSize(_ n: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB", "PB"]
        var v = Double(n)
        var i = 0
        while v >= 1000 && i < units.count - 1 { v /= 1000; i += 1 }
        var buf = [CChar](repeating: 0, count: 32)
        _ = withVaList([v]) { vsnprintf(&buf, buf.count, "%.4g", $0) }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + units[i]
    }

    /// A JSON string, escaped as Go's encoding/json does (`<`, `>`, `&` as \u escapes).
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<": out += "\\u003c"
            case ">": out += "\\u003e"
            case "&": out += "\\u0026"
            default:
                if u.value < 0x20 {
                    out += "\\u" + String(u.value, radix: 16).leftPadded(4)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
