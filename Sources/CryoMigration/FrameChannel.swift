import CryoLinux
import Crypto
import FoundationEssentials

/// What travels on a migration's control connection: length-prefixed frames (4 bytes big
/// endian payload length, 1 byte kind). A message is one JSON `MigrationMessage`; a file
/// set is announced by a message, then sent as data frames and closed by an end frame that
/// carries its length and sha256, checked on arrival.
public enum FrameKind: UInt8, Sendable {
    case message = 1, data = 2, end = 3
}

public struct StreamEnd: Codable, Sendable, Equatable {
    public var bytes: UInt64
    public var sha256: String
}

/// The other cryod went away (unavailable), or spoke out of turn or garbled (cryo's own
/// failure: both sides are cryod).
public enum MigrationWireError: CodedError, CustomStringConvertible {
    case peerClosed
    case malformed(String)
    case unexpected(String)
    public var code: CryoFailure.Code {
        switch self {
        case .peerClosed: return .unavailable
        case .malformed, .unexpected: return .internal
        }
    }
    public var description: String {
        switch self {
        case .peerClosed: return "the other cryod closed the migration connection"
        case .malformed(let why): return "malformed migration frame: \(why)"
        case .unexpected(let what): return "unexpected migration message: \(what)"
        }
    }
}

/// One side of the framed control connection. Calls are made one at a time by the
/// migration's task; the actor only keeps the read buffer consistent.
public actor FrameChannel {
    public static let maxFrame = 8 << 20
    public static let chunk = 1 << 20
    public let stream: any ByteStream
    private var decoder: FrameDecoder
    private var eof = false
    /// Called whenever bytes move either way (a `SilenceWatch` listens).
    private var activity: (@Sendable () -> Void)?

    /// `prefix`: bytes already read from the stream (past an HTTP upgrade's answer).
    public init(_ stream: any ByteStream, prefix: [UInt8] = []) {
        self.stream = stream
        self.decoder = FrameDecoder(prefix: prefix)
    }

    public func onActivity(_ f: (@Sendable () -> Void)?) { activity = f }

    // MARK: sending

    public func send(_ message: MigrationMessage) async throws {
        try await sendFrame(.message, Array(try JSONEncoder().encode(message)))
    }

    public func sendFrame(_ kind: FrameKind, _ payload: [UInt8]) async throws {
        precondition(payload.count <= Self.maxFrame)
        var frame = [UInt8]()
        frame.reserveCapacity(5 + payload.count)
        let n = UInt32(payload.count)
        frame += [UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff), kind.rawValue]
        frame += payload
        try await stream.write(frame)
        activity?()
    }

    /// Sends everything `source` yields as data frames, then the end frame; returns it.
    public func sendData(from source: any ByteStream) async throws -> StreamEnd {
        var hash = SHA256()
        var total: UInt64 = 0
        while let bytes = try await source.read() {
            var i = 0
            while i < bytes.count {
                let j = min(bytes.count, i + Self.chunk)
                let part = Array(bytes[i..<j])
                hash.update(data: part)
                try await sendFrame(.data, part)
                i = j
            }
            total += UInt64(bytes.count)
        }
        let end = StreamEnd(bytes: total, sha256: hexString(hash.finalize()))
        try await sendFrame(.end, Array(try JSONEncoder().encode(end)))
        return end
    }

    // MARK: receiving

    public func receiveFrame() async throws -> (FrameKind, [UInt8]) {
        while true {
            if let frame = try decoder.next() { return frame }
            if eof { throw MigrationWireError.peerClosed }
            guard let more = try await stream.read() else { eof = true; continue }
            activity?()
            decoder.append(more)
        }
    }

    /// The next message; B's `working` heartbeats are taken (they only count as activity).
    public func receive() async throws -> MigrationMessage {
        while true {
            let (kind, payload) = try await receiveFrame()
            guard kind == .message else { throw MigrationWireError.unexpected("\(kind) frame where a message was due") }
            let m = try FrameDecoder.message(payload)
            if case .working = m { continue }
            return m
        }
    }

    /// Receives data frames into `sink` until the end frame; checks length and sha256.
    public func receiveData(into sink: (borrowing [UInt8]) async throws -> Void) async throws -> StreamEnd {
        var hash = SHA256()
        var total: UInt64 = 0
        while true {
            let (kind, payload) = try await receiveFrame()
            switch kind {
            case .data:
                hash.update(data: payload)
                total += UInt64(payload.count)
                try await sink(payload)
            case .end:
                let end = try FrameDecoder.end(payload)
                let digest = hexString(hash.finalize())
                guard end.bytes == total, end.sha256 == digest else {
                    throw MigrationWireError.malformed("data damaged in transit: received \(total) bytes with sha256 \(digest), the sender sent \(end.bytes) bytes with sha256 \(end.sha256)")
                }
                return end
            case .message:
                throw MigrationWireError.unexpected("a message in the middle of a data stream")
            }
        }
    }
}


func hexString(_ digest: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    for b in digest { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0xf)]) }
    return String(decoding: out, as: UTF8.self)
}
