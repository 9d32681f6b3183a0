import NIOConcurrencyHelpers

/// The lock every operation that changes one container holds (start, restore, stop, kill,
/// pause, unpause, restart, checkpoint, migrate, exec's spawn, remove): an async mutex
/// whose waiters park as continuations, never as threads.
///
/// - FIFO: `unlock` hands the lock straight to the longest waiter, so a later caller cannot
///   barge in between (a `kill` queued behind a checkpoint runs before a `pause` that came
///   after it).
/// - No lost wakeups: the hand-over and the queue change happen under one mutex, so an
///   `unlock` racing a `lock` either finds the waiter queued or the waiter finds it free.
/// - Cancellation: a waiter whose task is cancelled leaves the queue and throws
///   `CancellationError`; if the lock was already handed to it, it owns it and must unlock
///   (`withLock` does, on every path, including a throw).
public final class ContainerLock: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var held = false
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Whether someone holds the lock (for tests and diagnostics).
    public var isHeld: Bool { state.withLockedValue { $0.held } }

    /// How many callers wait for it.
    public var waiting: Int { state.withLockedValue { $0.waiters.count } }

    /// Takes the lock, waiting in line if it is held. Throws `CancellationError` (without
    /// the lock) when the task is cancelled while it waits, or was cancelled before.
    public func lock() async throws {
        try Task.checkCancellation()
        let id: UInt64? = state.withLockedValue { s in
            if !s.held { s.held = true; return nil }
            s.nextID += 1
            return s.nextID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (k: CheckedContinuation<Void, any Error>) in
                // Queued under the same mutex that `unlock` hands over with: the lock may
                // have been released since `id` was drawn, then it is ours now.
                let resumeNow: Bool? = state.withLockedValue { s in
                    if !s.held { s.held = true; return true }
                    if Task.isCancelled { return false }
                    s.waiters.append(Waiter(id: id, continuation: k))
                    return nil
                }
                switch resumeNow {
                case true?: k.resume()
                case false?: k.resume(throwing: CancellationError())
                case nil: break
                }
            }
        } onCancel: {
            let waiter: Waiter? = state.withLockedValue { s in
                guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: i)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Gives the lock to the longest waiter, or frees it.
    public func unlock() {
        let next: Waiter? = state.withLockedValue { s in
            precondition(s.held, "ContainerLock.unlock() without the lock")
            if s.waiters.isEmpty { s.held = false; return nil }
            return s.waiters.removeFirst()   // stays held: ownership passes to it
        }
        next?.continuation.resume()
    }

    /// Runs `body` holding the lock (on the caller's actor); released when it returns or throws.
    public func withLock<T: Sendable>(isolation: isolated (any Actor)? = #isolation,
                                      _ body: () async throws -> T) async throws -> T {
        try await lock()
        defer { unlock() }
        return try await body()
    }
}
