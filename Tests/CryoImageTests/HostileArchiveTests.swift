import CryoLinux
import Foundation
import Glibc
import CryoTestSupport
import Testing
@testable import CryoImages

/// Archives built to hurt the daemon: metadata that links to a host file, and archives
/// that expand far beyond their size. Both are refused and leave nothing behind.
@Suite struct HostileArchiveTests {
    @Test(arguments: ["manifest.json", "index.json"])
    func symlinkedMetadataIsNotFollowed(meta: String) throws {
        let s = try TempDir()
        defer { s.remove() }
        let store = try ImageStore(root: s.at("store"))
        // A host file that would parse as the metadata if the link were followed.
        let marker = "host-file-\(getpid())"
        let host = s.at("host.json")
        try FS.atomicWrite(host, Array((meta == "manifest.json"
            ? #"[{"Config":"\#(marker)","RepoTags":["\#(marker)"],"Layers":[]}]"#
            : #"{"schemaVersion":2,"manifests":[{"mediaType":"\#(marker)","digest":"sha256:\#(String(repeating: "0", count: 64))","size":1}]}"#).utf8),
                           durable: false)
        try Tar.write(s.at("a.tar"), [.symlink(meta, host)])
        #expect {
            try store.load(archive: s.at("a.tar"))
        } throws: { "\($0)".contains("not a regular file") && !"\($0)".contains(marker) }
        #expect(try FS.listDirectory(s.at("store/tmp")).isEmpty)
    }

    /// 64 MiB of zeros, well compressed; a 16 MiB budget.
    @Test func loadPastTheExtractionLimitIsRefused() throws {
        let s = try TempDir()
        defer { s.remove() }
        var store = try ImageStore(root: s.at("store"))
        store.maxExtractedBytes = 16 << 20
        try Tar.write(s.at("bomb.tar.gz"), [.bytes("zeros", [UInt8](repeating: 0, count: 64 << 20))], compression: .gzip)
        var st = stat()
        #expect(stat(s.at("bomb.tar.gz"), &st) == 0 && st.st_size < 1 << 20)
        #expect {
            try store.load(archive: s.at("bomb.tar.gz"))
        } throws: { "\($0)".contains("more than \(16 << 20) bytes") }
        #expect {
            try store.importRootfs(archive: s.at("bomb.tar.gz"), reference: "bomb")
        } throws: { "\($0)".contains("more than \(16 << 20) bytes") }
        #expect(try FS.listDirectory(s.at("store/tmp")).isEmpty)
        #expect(try FS.listDirectory(s.at("store/layers/sha256")).isEmpty)
        #expect(try store.list().isEmpty)
    }

    /// Many empty entries cost a block each: a flood of inodes is counted too.
    @Test func manyEmptyEntriesCountAgainstTheBudget() throws {
        let s = try TempDir()
        defer { s.remove() }
        try Tar.write(s.at("many.tar"), (0..<100).map { .file("f\($0)", "") })
        try FS.mkdirAll(s.at("root"))
        #expect {
            try ArchiveReader.extract(s.at("many.tar"), into: s.at("root"), budget: ExtractionBudget(limit: 50 * 512, source: "test"))
        } throws: { "\($0)".contains("refused") }
    }

    @Test func theDefaultBudgetIsTheFreeSpace() {
        let b = ExtractionBudget.freeSpace(at: "/tmp")
        #expect(b.limit >= 0)
        #expect(b.limit < Int64.max)
    }
}
