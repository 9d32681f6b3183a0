@testable import CryoEngine
import NIOConcurrencyHelpers
import Testing

/// The per-container lock: one holder at a time, waiters served in arrival order, no waiter
/// left parked, released on a throw, cancellation leaves the line without the lock.
@Suite struct ContainerLockTests {
    /// An ordered log the tasks write into.
    final class Log: Sendable {
        let entries = NIOLockedValueBox<[String]>([])
        func add(_ s: String) { entries.withLockedValue { $0.append(s) } }
        var all: [String] { entries.withLockedValue { $0 } }
    }

    /// Waits (yielding) until `condition` holds; the lock's own state says when waiters queued.
    static func until(_ condition: () -> Bool) async {
        while !condition() { await Task.yield() }
    }

    @Test func mutualExclusion() async throws {
        let lock = ContainerLock()
        let inside = NIOLockedValueBox(0)
        let most = NIOLockedValueBox(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    try await lock.withLock {
                        let n = inside.withLockedValue { $0 += 1; return $0 }
                        most.withLockedValue { $0 = max($0, n) }
                        await Task.yield()
                        inside.withLockedValue { $0 -= 1 }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(most.withLockedValue { $0 } == 1)
        #expect(!lock.isHeld)
        #expect(lock.waiting == 0)
    }

    @Test func waitersAreServedInArrivalOrder() async throws {
        let lock = ContainerLock()
        let log = Log()
        try await lock.lock()
        var tasks: [Task<Void, any Error>] = []
        for i in 0..<10 {
            tasks.append(Task {
                try await lock.withLock { log.add("\(i)") }
            })
            await Self.until { lock.waiting == i + 1 }   // queued before the next one starts
        }
        lock.unlock()
        for t in tasks { try await t.value }
        #expect(log.all == (0..<10).map(String.init))
        #expect(!lock.isHeld)
    }

    @Test func noLostWakeupsUnderContention() async throws {
        // Many short holders on many threads: every one gets the lock and the lock ends free.
        let lock = ContainerLock()
        let count = NIOLockedValueBox(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<2000 {
                group.addTask { try await lock.withLock { count.withLockedValue { $0 += 1 } } }
            }
            try await group.waitForAll()
        }
        #expect(count.withLockedValue { $0 } == 2000)
        #expect(!lock.isHeld && lock.waiting == 0)
    }

    struct Boom: Error {}

    @Test func releasedWhenTheBodyThrows() async throws {
        let lock = ContainerLock()
        await #expect(throws: Boom.self) {
            try await lock.withLock { throw Boom() }
        }
        #expect(!lock.isHeld)
        // and the next caller gets it at once
        try await lock.withLock {}
    }

    @Test func aCancelledWaiterLeavesTheLineWithoutTheLock() async throws {
        let lock = ContainerLock()
        let log = Log()
        try await lock.lock()
        let cancelled = Task { try await lock.withLock { log.add("cancelled one ran") } }
        await Self.until { lock.waiting == 1 }
        let next = Task { try await lock.withLock { log.add("next") } }
        await Self.until { lock.waiting == 2 }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(lock.waiting == 1)
        #expect(lock.isHeld)   // still ours: the cancelled waiter took nothing
        lock.unlock()
        try await next.value
        #expect(log.all == ["next"])
        #expect(!lock.isHeld)
    }

    @Test func aTaskCancelledBeforeItAsksDoesNotTakeTheLock() async throws {
        let lock = ContainerLock()
        let t = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await lock.lock()
        }
        await #expect(throws: CancellationError.self) { try await t.value }
        #expect(!lock.isHeld)
    }
}
