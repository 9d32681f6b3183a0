@testable import CryoEngine
import CryoLinux
import FoundationEssentials
import Glibc
import Testing

/// Records written off the engine actor: in the order asked for, awaited writes on disk when
/// they return, nothing written into a removed container's directory.
@Suite struct RecordWriterTests {
    static func record(_ n: Int) -> StoredContainer {
        var c = StoredContainer(id: String(repeating: "e", count: 64), name: "c", created: "2026-01-01T00:00:00Z", imageRef: "busybox",
                                imageID: "sha256:" + String(repeating: "0", count: 64), config: ContainerConfig(), hostConfig: HostConfig(),
                                path: "true", args: [])
        c.restartCount = n
        return c
    }

    static func stored(_ path: String) throws -> StoredContainer {
        try JSONDecoder().decode(StoredContainer.self, from: Data(FS.readBytes(path)))
    }

    static func tempDir() throws -> String {
        var template = Array("/tmp/cryo-records-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw CryoFailure(.internal, "mkdtemp failed") }
        return String(cString: p)
    }

    @Test func queuedWritesLandInOrder() async throws {
        let dir = try Self.tempDir()
        defer { try? FS.removeAll(dir) }
        let w = RecordWriter()
        let path = dir + "/container.json"
        for n in 0..<500 { w.enqueue(Self.record(n), to: path) }
        await w.flush()
        #expect(try Self.stored(path).restartCount == 499)
        // an awaited write after queued ones is the last word
        w.enqueue(Self.record(1000), to: path)
        try await w.write(Self.record(7), to: path, durable: true)
        #expect(try Self.stored(path).restartCount == 7)
    }

    @Test func nothingIsWrittenIntoARemovedDirectory() async throws {
        let dir = try Self.tempDir()
        let w = RecordWriter()
        try FS.removeAll(dir)
        w.enqueue(Self.record(1), to: dir + "/container.json")
        try await w.write(Self.record(2), to: dir + "/container.json", durable: false)
        #expect(!FS.exists(dir))
    }
}
