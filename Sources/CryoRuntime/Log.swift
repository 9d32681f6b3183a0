import CryoLinux
import Glibc

/// The runtime's log: stderr, plus the --log file in text or JSON (the format
/// containerd and podman read back for error messages).
public enum Log {
    nonisolated(unsafe) static var file: Int32 = -1
    nonisolated(unsafe) static var json = false
    nonisolated(unsafe) public static var debug = false

    public static func configure(path: String?, format: String) {
        json = format == "json"
        if let path, !path.isEmpty {
            file = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        }
    }

    static func write(_ level: String, _ msg: String, toStderr: Bool) {
        if toStderr { FS.writeStderr(msg) }
        guard file >= 0 else { return }
        let line: String
        if json {
            line = "{\"level\":\"\(level)\",\"msg\":\(jsonQuote(msg)),\"time\":\"\(rfc3339Now())\"}\n"
        } else {
            line = "time=\"\(rfc3339Now())\" level=\(level) msg=\(jsonQuote(msg))\n"
        }
        try? FS.writeAll(fd: file, Array(line.utf8), what: "log")
    }

    public static func error(_ msg: String) { write("error", msg, toStderr: true) }
    public static func warn(_ msg: String) { write("warning", msg, toStderr: true) }
    public static func info(_ msg: String) { write("debug", msg, toStderr: debug) }
}

func jsonQuote(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += String(format4: u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

extension String {
    init(format4 v: UInt32) {
        let h = String(v, radix: 16)
        self = "\\u" + String(repeating: "0", count: 4 - h.count) + h
    }
}

extension FS {
    public static func writeStderr(_ s: String) {
        try? writeAll(fd: 2, Array((s.hasSuffix("\n") ? s : s + "\n").utf8), what: "stderr")
    }
}
