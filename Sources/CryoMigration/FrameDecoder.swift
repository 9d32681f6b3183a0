import FoundationEssentials

/// The receiving half of the control connection's frame format (`FrameChannel`), without I/O:
/// bytes in, whole frames out, synchronously — so the parser of what a peer sends can be tested
/// and fuzzed on its own. A frame's head (length, kind) is checked as soon as its 5 bytes are
/// there: an oversized or unknown frame fails before its payload is waited for.
public struct FrameDecoder: Sendable {
    private var buffer: [UInt8]
    private var offset = 0

    /// `prefix`: bytes already read from the stream (past an HTTP upgrade's answer).
    public init(prefix: [UInt8] = []) {
        buffer = prefix
    }

    /// Bytes received and not yet returned as frames.
    public var buffered: Int { buffer.count - offset }

    public mutating func append(_ bytes: some Collection<UInt8>) {
        if offset > 0 && offset >= buffer.count / 2 {
            buffer.removeFirst(offset)
            offset = 0
        }
        buffer += bytes
    }

    /// The next whole frame; nil until all its bytes have arrived.
    public mutating func next() throws -> (FrameKind, [UInt8])? {
        guard buffered >= 5 else { return nil }
        let h = offset
        let n = Int(buffer[h]) << 24 | Int(buffer[h + 1]) << 16 | Int(buffer[h + 2]) << 8 | Int(buffer[h + 3])
        guard n <= FrameChannel.maxFrame else {
            throw MigrationWireError.malformed("frame of \(n) bytes (at most \(FrameChannel.maxFrame))")
        }
        guard let kind = FrameKind(rawValue: buffer[h + 4]) else {
            throw MigrationWireError.malformed("unknown frame kind \(buffer[h + 4])")
        }
        guard buffered - 5 >= n else { return nil }
        let payload = Array(buffer[(h + 5)..<(h + 5 + n)])
        offset += 5 + n
        if offset == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            offset = 0
        }
        return (kind, payload)
    }

    /// A message frame's payload as a message.
    public static func message(_ payload: [UInt8]) throws -> MigrationMessage {
        do {
            return try JSONDecoder().decode(MigrationMessage.self, from: Data(payload))
        } catch {
            throw MigrationWireError.malformed("message: \(error)")
        }
    }

    /// An end frame's payload.
    public static func end(_ payload: [UInt8]) throws -> StreamEnd {
        guard let end = try? JSONDecoder().decode(StreamEnd.self, from: Data(payload)) else {
            throw MigrationWireError.malformed("end frame")
        }
        return end
    }
}
