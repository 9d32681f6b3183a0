import CryoMigration
import Synchronization
import Testing

/// A's watch over a frozen migration: heartbeats are activity, not messages; silence trips
/// the watch once; activity or a stop keeps it from tripping.
@Suite struct SilenceWatchTests {
    @Test func heartbeatsAreTakenAndCountAsActivity() async throws {
        let out = MemoryPipe()
        let sender = FrameChannel(out)
        try await sender.send(.working)
        try await sender.send(.working)
        try await sender.send(.restored(initPid: 7, restoreMs: 0))
        let rx = FrameChannel(MemoryPipe(recut(out.all, 5)))
        let heard = Mutex(0)
        await rx.onActivity { heard.withLock { $0 += 1 } }
        guard case .restored(let pid, _) = try await rx.receive() else {
            Issue.record("the heartbeats were not taken")
            return
        }
        #expect(pid == 7)
        #expect(heard.withLock { $0 } >= 3)
    }

    @Test func silenceTripsOnceAndSaysWhy() async {
        let watch = SilenceWatch(limit: 0.2)
        let trips = Mutex(0)
        let task = watch.start { trips.withLock { $0 += 1 } }
        await task.value
        #expect(trips.withLock { $0 } == 1)
        #expect(watch.tripped)
        #expect(watch.describe(target: "tcp://h:2376").contains("sent or took nothing for 0.2 s"))
    }

    @Test func activityAndStopKeepItQuiet() async throws {
        let watch = SilenceWatch(limit: 5)   // far above any scheduling delay of a loaded machine
        let trips = Mutex(0)
        let task = watch.start { trips.withLock { $0 += 1 } }
        for _ in 0..<8 {
            try await Task.sleep(nanoseconds: 100_000_000)
            watch.heard()
        }
        watch.stop()
        await task.value
        #expect(trips.withLock { $0 } == 0)
        #expect(!watch.tripped)
    }
}
