import CryoLinux
import Dispatch

/// The engine actor's executor: one serial dispatch queue. Each actor job runs with its
/// thread marked as the actor's (`OffActorCheck`), so that a debug build run with
/// `CRYO_ASSERT_OFF_ACTOR=1` crashes on any disk I/O done on the actor instead of letting it
/// stall every other request behind it.
final class EngineExecutor: SerialExecutor {
    private let queue = DispatchQueue(label: "cryo.engine.actor")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async {
            OffActorCheck.enter()
            job.runSynchronously(on: executor)
            OffActorCheck.leave()
        }
    }
}
