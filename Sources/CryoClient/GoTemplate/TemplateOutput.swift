/// What `--format` does for docker's list commands and for `inspect -f`.
public enum TemplateOutput {
    /// `--format` values that keep cryo's built-in output: empty/"table" (the default table)
    /// and "json" / "{{json .}}" (one JSON object per line).
    public enum Choice: Equatable {
        case defaultTable
        case json
        case template(String)
    }

    public static func choice(_ format: String?) -> Choice {
        guard let f = format, !f.isEmpty, f != "table" else { return .defaultTable }
        if f == "json" || f == "{{json .}}" { return .json }
        return .template(f)
    }

    /// docker's formatter: a "table" prefix adds a header row (the template run over
    /// `header`) and aligns the tab-separated cells; `\t` and `\n` written as two characters
    /// become a tab and a newline; each row ends with a newline.
    public static func list(_ format: String, rows: [TemplateValue], header: TemplateValue) throws -> String {
        var f = Substring(format)
        let isTable = f.hasPrefix("table")
        if isTable { f = f.dropFirst(5) }
        if f == "json" { f = "{{json .}}" }
        while f.first == " " { f.removeFirst() }
        while f.last == " " { f.removeLast() }
        let text = replaceEscapes(String(f))
        let template = try GoTemplate(text)
        var body = ""
        for r in rows { body += try template.execute(r) + "\n" }
        guard isTable else { return body }
        // docker runs the header through the same template with functions that leave text as it is.
        var headerTemplate = template
        headerTemplate.headerMode = true
        let head = try headerTemplate.execute(header)
        return TabWriter().format(head + "\n" + body)
    }

    static func replaceEscapes(_ s: String) -> String {
        var out = ""
        var it = s.makeIterator()
        while let c = it.next() {
            guard c == "\\" else { out.append(c); continue }
            guard let n = it.next() else { out.append(c); break }
            switch n {
            case "t": out.append("\t")
            case "n": out.append("\n")
            default: out.append(c); out.append(n)
            }
        }
        return out
    }

    /// `docker inspect -f`: the template over each object's JSON (a missing key is an error,
    /// as docker's fallback to raw JSON reports it), one result per line; "json" prints the
    /// objects as one compact JSON array.
    public static func inspect(_ format: String, items: [[UInt8]]) throws -> String {
        if format == "json" {
            return "[" + items.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ",") + "]\n"
        }
        let template = try GoTemplate(format, missingKeyIsError: true)
        var out = ""
        for item in items {
            let value: TemplateValue
            do { value = try TemplateJSON.parse(item) } catch {
                throw TemplateError(kind: .execute, message: "cryod's answer is not JSON: \(error)")
            }
            out += try template.execute(value) + "\n"
        }
        return out
    }
}
