@testable import CryoEngine
import CryoLinux
import Dispatch
import Testing

/// The engine actor's executor marks the thread of every actor job, so that the FS and Mount
/// helpers can refuse to run there (`OffActorCheck`, on in the engine tests).
@Suite struct EngineExecutorTests {
    /// An actor on the engine's executor, as `Engine` is.
    actor OnEngineExecutor {
        private nonisolated let executor = EngineExecutor()
        nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

        func markedHere() -> Bool { OffActorCheck.isMarked }

        /// Marked before and after an await that left the actor, and not where it went.
        func markedAroundAHop() async -> (before: Bool, away: Bool, after: Bool) {
            let before = OffActorCheck.isMarked
            let away = await Self.elsewhere()
            return (before, away, OffActorCheck.isMarked)
        }

        nonisolated static func elsewhere() async -> Bool {
            await withCheckedContinuation { (k: CheckedContinuation<Bool, Never>) in
                DispatchQueue.global().async { k.resume(returning: OffActorCheck.isMarked) }
            }
        }
    }

    @Test func actorJobsRunMarked() async {
        let a = OnEngineExecutor()
        #expect(await a.markedHere())
        let r = await a.markedAroundAHop()
        #expect(r.before && r.after)
        #expect(!r.away)
        // This test's own task is not on the actor.
        #expect(!OffActorCheck.isMarked)
    }
}
