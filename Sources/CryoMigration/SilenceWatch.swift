import CryoLinux
import Synchronization

/// While the source's container is frozen, the target must show signs of life: bytes taken
/// by the page stream or the control connection, or B's `working` heartbeat while it
/// restores. A target that is alive but stuck (a hung cryod, a stalled disk, a link that
/// drops packets without a reset) would otherwise keep the container frozen for ever. When
/// nothing has moved for `limit` seconds, `trip` runs once: it closes the connections, so
/// that every pending read and write fails and the migration's ordinary failure path resumes
/// the container here (or, after the commit was sent, asks B's record).
public final class SilenceWatch: Sendable {
    public let limit: Double
    private struct State {
        var last = Monotonic.now()
        var tripped = false
        var stopped = false
    }
    private let state = Mutex(State())

    public init(limit: Double) { self.limit = limit }

    /// Something moved.
    public func heard() {
        state.withLock { $0.last = Monotonic.now() }
    }

    /// Whether the watch closed the connections (the failure is the target's silence).
    public var tripped: Bool { state.withLock { $0.tripped } }

    /// The watch ends (B confirmed, or the migration ended otherwise).
    public func stop() {
        state.withLock { $0.stopped = true }
    }

    /// Checks every quarter second (or a tenth of the limit) until stopped.
    public func start(trip: @escaping @Sendable () async -> Void) -> Task<Void, Never> {
        let period = min(0.25, limit / 10)
        return Task { [self] in
            state.withLock { $0.last = Monotonic.now() }
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(period * 1e9))
                let fire = state.withLock { s -> Bool in
                    guard !s.stopped, !s.tripped, s.last.elapsedSeconds >= limit else { return false }
                    s.tripped = true
                    return true
                }
                if fire {
                    await trip()
                    return
                }
                if state.withLock({ $0.stopped }) { return }
            }
        }
    }

    /// The error text for a migration the watch ended.
    public func describe(target: String) -> String {
        "the target \(target) sent or took nothing for \(Self.seconds(limit)) while the container was frozen (a hung cryod or a stalled link); the connections were closed"
    }

    static func seconds(_ s: Double) -> String {
        s == s.rounded() ? "\(Int(s)) s" : "\(s) s"
    }
}
