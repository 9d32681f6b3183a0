/// Docker's multiplexed stream framing: [stream, 0, 0, 0, size (big-endian u32)] + payload.
/// The monitor always frames what it sends on attach connections; cryod strips the
/// frames for tty containers, whose streams Docker sends raw.
public enum StreamKind: UInt8, Sendable {
    case stdin = 0, stdout = 1, stderr = 2, systemError = 3
    public var name: String {
        switch self {
        case .stdin: "stdin"
        case .stdout: "stdout"
        case .stderr: "stderr"
        case .systemError: "system"
        }
    }
}

public enum StreamFrame {
    public static func encode(_ kind: StreamKind, _ payload: some Collection<UInt8>) -> [UInt8] {
        let n = UInt32(payload.count)
        var out: [UInt8] = [kind.rawValue, 0, 0, 0, UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)]
        out.append(contentsOf: payload)
        return out
    }

    /// Incremental decoder: feed bytes, take whole frames.
    public struct Decoder: Sendable {
        var buffer: [UInt8] = []
        public init() {}
        public mutating func feed(_ bytes: [UInt8]) { buffer.append(contentsOf: bytes) }
        public mutating func next() -> (StreamKind, [UInt8])? {
            guard buffer.count >= 8 else { return nil }
            let n = Int(buffer[4]) << 24 | Int(buffer[5]) << 16 | Int(buffer[6]) << 8 | Int(buffer[7])
            guard buffer.count >= 8 + n else { return nil }
            let kind = StreamKind(rawValue: buffer[0]) ?? .stdout
            let payload = Array(buffer[8..<(8 + n)])
            buffer.removeFirst(8 + n)
            return (kind, payload)
        }
    }
}
