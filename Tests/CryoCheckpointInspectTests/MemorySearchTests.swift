import CRIUImages
import Foundation
import Testing

@testable import CryoCheckpointInspect

@Suite struct MemorySearchTests {
    static let page = Int(DumpedMemory.pageSize)

    /// pid 1: two address-contiguous present runs (0x10000: 1 page, 0x11000: 1 page), then one page
    /// in a parent checkpoint holding the same secret, which must not be found.
    func fixture(_ dir: String) throws -> InspectedProcess {
        var head = pagemap_head()
        head.pagesID = 9
        func entry(_ vaddr: UInt64, _ flags: UInt32) -> pagemap_entry {
            var e = pagemap_entry()
            (e.vaddr, e.nrPages, e.flags) = (vaddr, 1, flags)
            return e
        }
        let entries = [entry(0x10000, 4), entry(UInt64(0x10000 + Self.page), 4), entry(0x40000, 1)]
        ImageFraming.write(dir + "/pagemap-1.img",
                           ImageFraming.image(magic: ImageMagic.pagemap, entries: try [ImageFraming.bytes(head)] + entries.map(ImageFraming.bytes)))
        var pages = [UInt8](repeating: 0, count: 2 * Self.page)
        // "SECRET=hunter2" split across the two runs' boundary, and "token-42\u{1}" in the middle of page 0.
        let secret = Array("SECRET=hunter2".utf8)
        pages.replaceSubrange(Self.page - 7..<Self.page + 7, with: secret)
        pages.replaceSubrange(100..<109, with: Array("token-42".utf8) + [1])
        ImageFraming.write(dir + "/pages-9.img", pages)
        let mapping = InspectedMapping(start: 0x10000, end: UInt64(0x10000 + 2 * Self.page), size: UInt64(2 * Self.page), dumped: 0,
                                       protection: "rw-p", kind: "heap", path: nil, offset: nil)
        return InspectedProcess(pid: 1, ppid: 0, pgid: 1, sid: 1, threads: [1], comm: "app", state: "alive", arguments: nil,
                                environment: nil, cwd: nil, root: nil, uid: 0, gid: 0, euid: 0, egid: 0, namespaces: [:], files: [],
                                mappings: [mapping])
    }

    @Test func literalAcrossRunsWithContextAndMapping() throws {
        let dir = ImageFraming.tempDirectory()
        defer { ImageFraming.remove(dir) }
        let p = try fixture(dir)
        let m = try MemorySearch.search(directory: dir, processes: [p], pattern: .literal("hunter2"), context: 4)
        #expect(m.count == 1)
        #expect(m.first?.address == UInt64(0x10000 + Self.page))
        #expect(m.first?.match == "hunter2")
        #expect(m.first?.before == "RET=")
        #expect(m.first?.after == "....")
        #expect(m.first?.mappingStart == 0x10000)
        #expect(m.first?.mappingKind == "heap")
        #expect(m.first?.pid == 1)
    }

    @Test func budgetAndPatternLength() throws {
        let dir = ImageFraming.tempDirectory()
        defer { ImageFraming.remove(dir) }
        let p = try fixture(dir)
        // A spent budget stops the search before its first piece, with a message that says so.
        #expect(throws: MemorySearch.stopped(after: 0, .literal("hunter2"))) {
            try MemorySearch.search(directory: dir, processes: [p], pattern: .literal("hunter2"), budgetSeconds: 0)
        }
        #expect(MemorySearch.stopped(after: 3, .regex("(a+)+$")).message.hasPrefix("search stopped after 3 s: the regular expression (a+)+$"))
        #expect(throws: InspectError.self) { try MemorySearch.validate(.regex(String(repeating: "x", count: MemorySearch.maxRegexLength + 1))) }
        try MemorySearch.validate(.regex(String(repeating: "x", count: MemorySearch.maxRegexLength)))
        // The request a child process runs round-trips through JSON.
        let request = MemorySearchRequest(directory: dir, processes: [p], pattern: .regex("SECRET=[a-z]+"), context: 1)
        let decoded = try JSONDecoder().decode(MemorySearchRequest.self, from: try JSONEncoder().encode(request))
        #expect(try decoded.run().map(\.match) == ["SECRET=hunter"])
    }

    @Test func regexSeesNonPrintablesAsDots() throws {
        let dir = ImageFraming.tempDirectory()
        defer { ImageFraming.remove(dir) }
        let p = try fixture(dir)
        let m = try MemorySearch.search(directory: dir, processes: [p], pattern: .regex("token-[0-9]+\\."), context: 2)
        #expect(m.map(\.address) == [0x10000 + 100])
        #expect(m.first?.match == "token-42.")
        #expect(m.first?.before == "..")
        let secret = try MemorySearch.search(directory: dir, processes: [p], pattern: .regex("SECRET=[a-z]+[0-9]"))
        #expect(secret.map(\.match) == ["SECRET=hunter2"])
    }

    @Test func limitStopsTheSearch() throws {
        let dir = ImageFraming.tempDirectory()
        defer { ImageFraming.remove(dir) }
        let p = try fixture(dir)
        #expect(try MemorySearch.search(directory: dir, processes: [p], pattern: .literal("e")).count == 2)
        #expect(try MemorySearch.search(directory: dir, processes: [p], pattern: .literal("e"), limit: 1).count == 1)
    }

    @Test func badPatternsAreRefused() {
        #expect(throws: InspectError.self) { try MemorySearch.validate(.literal("")) }
        #expect(throws: InspectError.self) { try MemorySearch.validate(.regex("")) }
        #expect(throws: InspectError.self) { try MemorySearch.validate(.regex("(unclosed")) }
        #expect(throws: Never.self) { try MemorySearch.validate(.regex("a+b")) }
    }
}
