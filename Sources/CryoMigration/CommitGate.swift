import CryoLinux
import Dispatch
import Synchronization

/// Joins CRIU's `post-dump` notification — answered on a blocking pool thread inside the
/// runtime's dump — with the migration's async flow. The dump's hook announces that every
/// image is written (the container frozen, its network locked) and blocks; the migration
/// moves the files, has B restore, and decides: commit lets CRIU kill the source's tasks,
/// abort makes the hook throw, and CRIU resumes them.
public final class CommitGate: Sendable {
    private struct State {
        var arrived = false
        var ended = false
        var waiter: CheckedContinuation<Bool, Never>?
        var commit: Bool?
        var reason = ""
        var keepFrozen = false
    }
    private let state = Mutex(State())
    private let semaphore = DispatchSemaphore(value: 0)

    public init() {}

    /// The dump's post-dump hook.
    public func atPostDump() throws {
        let waiter = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            s.arrived = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: true)
        semaphore.wait()
        let (commit, reason) = state.withLock { ($0.commit ?? false, $0.reason) }
        if !commit { throw CryoFailure(.internal, reason) }
    }

    /// The dump is over (or failed before reaching post-dump).
    public func dumpEnded() {
        let waiter = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            s.ended = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: false)
    }

    /// True once the dump reached post-dump; false if it ended first.
    public func arrival() async -> Bool {
        await withCheckedContinuation { (k: CheckedContinuation<Bool, Never>) in
            let now = state.withLock { s -> Bool? in
                if s.arrived { return true }
                if s.ended { return false }
                s.waiter = k
                return nil
            }
            if let now { k.resume(returning: now) }
        }
    }

    /// Whether an abort was decided with `keepFrozen` (the runtime's keepFrozenAfterFailure).
    public var keepsFrozen: Bool { state.withLock { $0.keepFrozen } }

    /// Answers the hook (once): commit, or abort with the reason CRIU's caller will report.
    /// `keepFrozen`: the abort must leave the container frozen (the outcome is unknown).
    public func decide(commit: Bool, reason: String = "", keepFrozen: Bool = false) {
        let first = state.withLock { s -> Bool in
            guard s.commit == nil else { return false }
            s.commit = commit
            s.reason = reason
            s.keepFrozen = keepFrozen
            return true
        }
        if first { semaphore.signal() }
    }
}
