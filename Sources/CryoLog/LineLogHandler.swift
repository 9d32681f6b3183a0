import CryoLinux
import Glibc
import Logging
import Synchronization

/// A swift-log handler writing one line per message to a file descriptor (stderr unless
/// told otherwise), as text or JSON. The whole line goes out in one locked write loop, so
/// lines from concurrent threads never interleave.
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public let label: String
    public let format: LogOptions.Format
    let output: LineOutput

    public init(label: String, options: LogOptions, output: LineOutput = .stderr) {
        self.label = label
        self.logLevel = options.level
        self.format = options.format
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let given = event.metadata { all.merge(given) { _, new in new } }
        output.write(LogLine.render(time: rfc3339Now(), level: event.level, label: label,
                                    message: event.message.description, metadata: all, format: format))
    }
}

/// Where `LineLogHandler` writes: a descriptor shared by every handler of the process.
public final class LineOutput: Sendable {
    let fd: Mutex<Int32>
    /// When the descriptor is a regular file (a monitor's log, opened O_APPEND): the size it
    /// may reach. A line that would pass it empties the file first, so a long-lived process
    /// that logs cannot fill the disk.
    let sizeLimit: Int?

    public init(fd: Int32, sizeLimit: Int? = nil) {
        self.fd = Mutex(fd)
        self.sizeLimit = sizeLimit
    }

    public static let stderr = LineOutput(fd: 2)

    /// Writes `line` (ending in a newline) whole.
    public func write(_ line: String) {
        let bytes = Array(line.utf8)
        fd.withLock { fd in
            if let sizeLimit {
                var st = stat()
                if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, Int(st.st_size) + bytes.count > sizeLimit {
                    _ = ftruncate(fd, 0)
                }
            }
            var off = 0
            while off < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
                if n < 0 && errno == EINTR { continue }
                // A closed or full stderr cannot be reported anywhere: the line is dropped.
                guard n > 0 else { return }
                off += n
            }
        }
    }
}

/// The two line formats, pure so that tests can check them.
public enum LogLine {
    /// Keys of a JSON line that metadata may not replace.
    static let reserved: Set<String> = ["time", "level", "label", "msg"]

    public static func render(time: String, level: Logger.Level, label: String, message: String,
                              metadata: Logger.Metadata, format: LogOptions.Format) -> String {
        switch format {
        case .text:
            var s = "\(time) \(level.rawValue) \(label): \(message)"
            for key in metadata.keys.sorted() { s += " \(key)=\(textValue(metadata[key]!))" }
            return s + "\n"
        case .json:
            var s = "{\"time\":\(quote(time)),\"level\":\(quote(level.rawValue)),\"label\":\(quote(label)),\"msg\":\(quote(message))"
            for key in metadata.keys.sorted() where !reserved.contains(key) {
                s += ",\(quote(key)):\(jsonValue(metadata[key]!))"
            }
            return s + "}\n"
        }
    }

    static func textValue(_ v: Logger.Metadata.Value) -> String {
        let s = v.description
        let plain = !s.isEmpty && s.unicodeScalars.allSatisfy { $0.value > 0x20 && $0 != "\"" && $0 != "=" && $0.value < 0x7f }
        return plain ? s : quote(s)
    }

    static func jsonValue(_ v: Logger.Metadata.Value) -> String {
        switch v {
        case .string(let s): quote(s)
        case .stringConvertible(let c): quote(c.description)
        case .array(let a): "[" + a.map(jsonValue).joined(separator: ",") + "]"
        case .dictionary(let d): "{" + d.keys.sorted().map { "\(quote($0)):\(jsonValue(d[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    /// A JSON string literal (also used for text values that need quoting).
    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
