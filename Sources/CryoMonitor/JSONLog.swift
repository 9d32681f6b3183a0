import FoundationEssentials

/// Docker's json-file log format: one JSON object per line,
/// `{"log":"text\n","stream":"stdout","time":"2026-11-29T17:00:00.123456789Z"}`.
/// Output is split at newlines; a partial line is written once it reaches 16 KiB or
/// its stream ends (Docker's limit), so `docker logs` semantics hold.
public struct JSONLogLine: Codable, Sendable, Equatable {
    public var log: String
    public var stream: String
    public var time: String
    public init(log: String, stream: String, time: String) {
        self.log = log
        self.stream = stream
        self.time = time
    }

    /// The encoded line, newline-terminated. Hand-written: the monitor writes one per
    /// line of output, and JSONEncoder would dominate its cost.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = Array("{\"log\":\"".utf8)
        JSONLogLine.escape(log, into: &out)
        out += Array("\",\"stream\":\"".utf8)
        JSONLogLine.escape(stream, into: &out)
        out += Array("\",\"time\":\"".utf8)
        out += Array(time.utf8)
        out += Array("\"}\n".utf8)
        return out
    }

    static func escape(_ s: String, into out: inout [UInt8]) {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        for b in s.utf8 {
            switch b {
            case 0x22: out += [0x5c, 0x22]
            case 0x5c: out += [0x5c, 0x5c]
            case 0x0a: out += [0x5c, 0x6e]
            case 0x0d: out += [0x5c, 0x72]
            case 0x09: out += [0x5c, 0x74]
            case 0..<0x20: out += [0x5c, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0xf)]]
            default: out.append(b)
            }
        }
    }

    public static func decode(_ line: some Collection<UInt8>) -> JSONLogLine? {
        try? JSONDecoder().decode(JSONLogLine.self, from: Data(line))
    }
}

/// Splits one stream's output into log lines.
public struct LineSplitter: Sendable {
    public static let maxPartial = 16 * 1024
    var pending: [UInt8] = []
    public init() {}

    /// Complete lines (with their newline) from `bytes`; long partials are cut at 16 KiB.
    public mutating func feed(_ bytes: some Collection<UInt8>) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        for b in bytes {
            pending.append(b)
            if b == 0x0a || pending.count >= Self.maxPartial {
                lines.append(pending)
                pending.removeAll(keepingCapacity: true)
            }
        }
        return lines
    }

    /// What is left at the end of the stream.
    public mutating func flush() -> [UInt8]? {
        guard !pending.isEmpty else { return nil }
        defer { pending = [] }
        return pending
    }
}
