import CryoMigration
import Testing

@Suite struct FrameDecoderTests {
    /// Frames as FrameChannel writes them.
    static func wire() async throws -> [UInt8] {
        let out = MemoryPipe()
        let ch = FrameChannel(out)
        try await ch.send(.restored(initPid: 42, restoreMs: 1.5))
        _ = try await ch.sendData(from: MemoryPipe([Array(repeating: 7, count: 3000)]))
        try await ch.send(.commit)
        return out.all
    }

    @Test func framesComeOutWholeWhateverTheCut() async throws {
        let bytes = try await Self.wire()
        for size in [1, 2, 5, 4096] {
            var d = FrameDecoder()
            var frames: [(FrameKind, [UInt8])] = []
            for part in recut(bytes, size) {
                d.append(part)
                while let f = try d.next() { frames.append(f) }
            }
            #expect(frames.map(\.0) == [.message, .data, .end, .message])
            #expect(d.buffered == 0)
            guard case .restored(let pid, _) = try FrameDecoder.message(frames[0].1) else { Issue.record("not restored"); return }
            #expect(pid == 42)
            #expect(frames[1].1.count == 3000)
            #expect(try FrameDecoder.end(frames[2].1).bytes == 3000)
        }
    }

    @Test func aPrefixIsDecodedFirst() async throws {
        let bytes = try await Self.wire()
        var d = FrameDecoder(prefix: Array(bytes.prefix(7)))
        #expect(try d.next() == nil)
        d.append(bytes.dropFirst(7))
        #expect(try d.next()?.0 == .message)
    }

    @Test func anOversizedOrUnknownHeadFailsBeforeItsPayload() {
        var big = FrameDecoder(prefix: [0xff, 0xff, 0xff, 0xff, 1])
        #expect(throws: MigrationWireError.self) { _ = try big.next() }
        var unknown = FrameDecoder(prefix: [0, 0, 0, 2, 9])
        #expect(throws: MigrationWireError.self) { _ = try unknown.next() }
        #expect(throws: MigrationWireError.self) { _ = try FrameDecoder.message(Array("{\"nope\":{}}".utf8)) }
        #expect(throws: MigrationWireError.self) { _ = try FrameDecoder.end(Array("{}".utf8)) }
    }
}
