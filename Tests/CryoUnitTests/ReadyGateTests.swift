import Glibc
import Testing
@testable import CryoLinux

@Suite struct ReadyGateTests {
    @Test func opened() throws {
        let g = try ReadyGate.make()
        defer { close(g.read) }
        ReadyGate.open(g.write)
        #expect(try ReadyGate.wait(g.read, timeoutMs: 1000) == .opened)
    }

    @Test func failedByClosing() throws {
        let g = try ReadyGate.make()
        defer { close(g.read) }
        ReadyGate.fail(g.write)
        #expect(try ReadyGate.wait(g.read, timeoutMs: 1000) == .failed)
    }

    @Test func timesOut() throws {
        let g = try ReadyGate.make()
        defer { close(g.read); close(g.write) }
        #expect(try ReadyGate.wait(g.read, timeoutMs: 20) == .timedOut)
    }

    @Test func anyOtherByteIsAFailure() throws {
        let g = try ReadyGate.make()
        defer { close(g.read) }
        var b: UInt8 = 0x30
        #expect(write(g.write, &b, 1) == 1)
        close(g.write)
        #expect(try ReadyGate.wait(g.read, timeoutMs: 1000) == .failed)
    }
}
