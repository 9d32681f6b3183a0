import CryoMigration
import Glibc
import Testing

/// B's page socket for a source on the same machine: only the connection that sends the token
/// B gave is handed to CRIU; a listener gives up after its time; a path too long for a unix
/// socket address means no local socket (the relayed stream instead).
struct LocalPageSocketTests {
    func freshPath() -> String { "/tmp/cryo-lps-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" }

    @Test func onlyTheConnectionWithTheTokenIsAccepted() async throws {
        let listener = try #require(try LocalPageSocket.Listener.open(path: freshPath()))
        defer { listener.close() }
        var st = stat()
        #expect(stat(listener.offer.path, &st) == 0 && st.st_mode & 0o777 == 0o600)
        let stranger = try LocalPageSocket.connect(.init(path: listener.offer.path, token: String(repeating: "0", count: 64)))
        defer { close(stranger) }
        let source = try LocalPageSocket.connect(listener.offer)
        defer { close(source) }
        let accepted = try await listener.accept(seconds: 10)
        defer { close(accepted) }
        // The accepted end is the source's: a byte written there arrives.
        var byte: UInt8 = 42
        #expect(write(source, &byte, 1) == 1)
        var got: UInt8 = 0
        #expect(read(accepted, &got, 1) == 1 && got == 42)
        // The stranger was hung up on.
        var probe: UInt8 = 0
        #expect(read(stranger, &probe, 1) == 0)
    }

    @Test func acceptGivesUpAfterItsTime() async throws {
        let listener = try #require(try LocalPageSocket.Listener.open(path: freshPath()))
        defer { listener.close() }
        await #expect(throws: (any Error).self) { _ = try await listener.accept(seconds: 0.2) }
    }

    @Test func closeRemovesTheSocketFile() throws {
        let listener = try #require(try LocalPageSocket.Listener.open(path: freshPath()))
        listener.close()
        #expect(access(listener.offer.path, F_OK) != 0)
    }

    @Test func aPathTooLongForASocketAddressMeansNoLocalSocket() throws {
        #expect(try LocalPageSocket.Listener.open(path: "/tmp/" + String(repeating: "x", count: 110)) == nil)
    }
}
