import Synchronization

/// A probe's stdout and stderr together, as the two pipes deliver them, kept to the first
/// `limit` bytes (dockerd's 4 KiB) — a chatty probe must not grow the record or memory. What
/// comes after is read (so the probe never blocks on a full pipe) and dropped; a cut output
/// ends in "...".
public final class HealthProbeOutput: Sendable {
    public static let limit = 4096
    private let state = Mutex<(bytes: [UInt8], truncated: Bool)>(([], false))

    public init() {}

    public func append(_ chunk: [UInt8]) {
        state.withLock { s in
            let room = Self.limit - s.bytes.count
            if chunk.count > room { s.truncated = true }
            if room > 0 { s.bytes += chunk.prefix(room) }
        }
    }

    public var text: String {
        state.withLock { s in String(decoding: s.bytes, as: UTF8.self) + (s.truncated ? "..." : "") }
    }
}
