import Crypto
import CryoHTTP
import CryoMigration
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// An in-memory stream: what one side writes, the other reads (in chunks as written).
final class MemoryPipe: ByteStream {
    private let chunks = Mutex<[[UInt8]]>([])
    private let closed = Mutex(false)
    init(_ chunks: [[UInt8]] = []) { self.chunks.withLock { $0 = chunks } }
    func read() async throws -> [UInt8]? {
        chunks.withLock { $0.isEmpty ? nil : $0.removeFirst() }
    }
    func write(_ bytes: [UInt8]) async throws { chunks.withLock { $0.append(bytes) } }
    func closeWrite() async { closed.withLock { $0 = true } }
    func close() async { closed.withLock { $0 = true } }
    var all: [UInt8] { chunks.withLock { $0.flatMap { $0 } } }
}

/// Everything `source` has, re-cut into chunks of `size` bytes (frames must survive any cut).
func recut(_ bytes: [UInt8], _ size: Int) -> [[UInt8]] {
    stride(from: 0, to: bytes.count, by: size).map { Array(bytes[$0..<min(bytes.count, $0 + size)]) }
}

@Suite struct FrameChannelTests {
    @Test func messagesAndDataSurviveAnyChunking() async throws {
        let out = MemoryPipe()
        let sender = FrameChannel(out)
        try await sender.send(.accept(missingLayers: ["sha256:" + String(repeating: "a", count: 64)], pageSocket: nil))
        let payload = (0..<100_000).map { UInt8($0 % 251) }
        let end = try await sender.sendData(from: MemoryPipe(recut(payload, 70_000)))
        #expect(end.bytes == 100_000)
        try await sender.send(.commit)
        for size in [3, 4096, 1 << 20] {
            let rx = FrameChannel(MemoryPipe(recut(out.all, size)))
            guard case .accept(let m, _) = try await rx.receive() else { Issue.record("not accept"); return }
            #expect(m.count == 1)
            let got = Mutex<[UInt8]>([])
            let e = try await rx.receiveData { bytes in got.withLock { $0 += bytes } }
            #expect(e == end)
            #expect(got.withLock { $0 } == payload)
            guard case .commit = try await rx.receive() else { Issue.record("not commit"); return }
        }
    }

    @Test func damagedDataIsRefusedNamingTheDigests() async throws {
        let out = MemoryPipe()
        let sender = FrameChannel(out)
        _ = try await sender.sendData(from: MemoryPipe([[1, 2, 3, 4]]))
        var bytes = out.all
        bytes[5] ^= 0xff   // first data byte, after the 5-byte frame head
        let rx = FrameChannel(MemoryPipe([bytes]))
        await #expect(throws: MigrationWireError.self) {
            _ = try await rx.receiveData { _ in }
        }
        do { _ = try await FrameChannel(MemoryPipe([bytes])).receiveData { _ in } } catch {
            #expect("\(error)".contains("damaged in transit"))
        }
    }

    @Test func oversizedUnknownAndTruncatedFramesAreRefused() async throws {
        let huge: [UInt8] = [0x7f, 0xff, 0xff, 0xff, 1]
        await #expect(throws: MigrationWireError.self) { _ = try await FrameChannel(MemoryPipe([huge])).receive() }
        let unknown: [UInt8] = [0, 0, 0, 0, 9]
        await #expect(throws: MigrationWireError.self) { _ = try await FrameChannel(MemoryPipe([unknown])).receive() }
        let truncated: [UInt8] = [0, 0, 0, 10, 1, 65]
        do {
            _ = try await FrameChannel(MemoryPipe([truncated])).receive()
            Issue.record("a truncated frame was accepted")
        } catch let e as MigrationWireError {
            #expect("\(e)".contains("closed"))
        }
        let notJSON: [UInt8] = [0, 0, 0, 3, 1, 0x7b, 0x7b, 0x7b]
        await #expect(throws: MigrationWireError.self) { _ = try await FrameChannel(MemoryPipe([notJSON])).receive() }
    }

    @Test func dataWhereAMessageIsDueIsRefused() async throws {
        let out = MemoryPipe()
        _ = try await FrameChannel(out).sendData(from: MemoryPipe([[1]]))
        await #expect(throws: MigrationWireError.self) { _ = try await FrameChannel(MemoryPipe([out.all])).receive() }
    }
}

@Suite struct CommitGateTests {
    @Test func commitLetsTheHookReturn() async throws {
        let gate = CommitGate()
        let hook = Task { try await NIOThreadPool.singleton.runIfActive { try gate.atPostDump() } }   // a blocking thread, as the runtime's
        #expect(await gate.arrival())
        gate.decide(commit: true)
        try await hook.value
    }

    @Test func abortMakesTheHookThrowWithTheReason() async throws {
        let gate = CommitGate()
        let hook = Task { try await NIOThreadPool.singleton.runIfActive { try gate.atPostDump() } }   // a blocking thread, as the runtime's
        #expect(await gate.arrival())
        gate.decide(commit: false, reason: "target failed")
        gate.decide(commit: true)   // a second decision changes nothing
        do { try await hook.value; Issue.record("the hook returned") } catch {
            #expect("\(error)".contains("target failed"))
        }
        #expect(!gate.keepsFrozen)
    }

    @Test func aDumpThatEndsEarlyIsNoArrival() async {
        let gate = CommitGate()
        gate.dumpEnded()
        #expect(await gate.arrival() == false)
    }
}

@Suite struct StreamRendezvousTests {
    @Test func aStreamReachesOnlyAnExpectingSession() async throws {
        let r = StreamRendezvous()
        #expect(!r.deliver("s1", MemoryPipe()))
        r.expect("s1")
        #expect(r.deliver("s1", MemoryPipe([[7]])))
        let s = try await r.wait("s1", seconds: 5)
        #expect(try await s.read() == [7])
    }

    @Test func waitTimesOut() async {
        let r = StreamRendezvous()
        r.expect("s2")
        await #expect(throws: MigrationWireError.self) { _ = try await r.wait("s2", seconds: 0.1) }
    }
}
