import CRIUImages
import Testing

@testable import CryoCheckpointInspect

@Suite struct DumpedMemoryTests {
    static let page = DumpedMemory.pageSize

    func entry(_ vaddr: UInt64, pages: UInt64, flags: UInt32) -> pagemap_entry {
        var e = pagemap_entry()
        (e.vaddr, e.nrPages, e.flags) = (vaddr, pages, flags)
        return e
    }

    /// pagemap-1.img → pages-5.img: two present runs around one kept in a parent checkpoint.
    func fixture(_ dir: String) throws {
        var head = pagemap_head()
        head.pagesID = 5
        let entries = [entry(0x10000, pages: 2, flags: 4), entry(0x12000, pages: 1, flags: 1), entry(0x20000, pages: 1, flags: 4)]
        ImageFraming.write(dir + "/pagemap-1.img",
                           ImageFraming.image(magic: ImageMagic.pagemap, entries: try [ImageFraming.bytes(head)] + entries.map(ImageFraming.bytes)))
        var pages = [UInt8](repeating: 0, count: Int(3 * Self.page))
        for i in pages.indices { pages[i] = UInt8(i / Int(Self.page) + 1) }  // page n of the file is filled with n+1
        pages.replaceSubrange(Int(Self.page) - 3..<Int(Self.page) + 3, with: Array("abcdef".utf8))
        ImageFraming.write(dir + "/pages-5.img", pages)
    }

    @Test func presentPagesAreBackToBackInPagemapOrder() throws {
        let dir = ImageFraming.tempDirectory()
        defer { ImageFraming.remove(dir) }
        try fixture(dir)
        let m = try DumpedMemory(directory: dir, pid: 1)
        #expect(m.pagesPath == dir + "/pages-5.img")
        #expect(m.runs.map(\.fileOffset) == [0, nil, 2 * Self.page])
        // A read that crosses the first run's page boundary.
        #expect(try m.read(0x10000 + Self.page - 3, count: 6) == Array("abcdef".utf8))
        // The third run is the pages file's third page.
        #expect(try m.read(0x20000, count: 2) == [3, 3])
        // Pages kept in the parent, and unmapped addresses, are not here.
        #expect(try m.read(0x12000, count: 1) == nil)
        #expect(try m.read(0x11000 + Self.page - 1, count: 2) == nil)
        #expect(try m.read(0x30000, count: 1) == nil)
    }

    @Test func dumpedBytesCountsOnlyPresentPagesInRange() throws {
        let dir = ImageFraming.tempDirectory()
        defer { ImageFraming.remove(dir) }
        try fixture(dir)
        let m = try DumpedMemory(directory: dir, pid: 1)
        #expect(m.dumpedBytes(from: 0x10000, to: 0x13000) == 2 * Self.page)
        #expect(m.dumpedBytes(from: 0x11000, to: 0x21000) == Self.page + Self.page)
        #expect(m.dumpedBytes(from: 0x40000, to: 0x50000) == 0)
    }

    @Test func legacyEntriesWithoutFlagsUseInParent() throws {
        var a = pagemap_entry(), b = pagemap_entry()
        (a.vaddr, a.compatNrPages) = (0x1000, 1)
        (b.vaddr, b.compatNrPages, b.inParent) = (0x2000, 1, true)
        let m = DumpedMemory(pagesPath: "/nonexistent", entries: [a, b])
        #expect(m.runs == [.init(address: 0x1000, pages: 1, fileOffset: 0), .init(address: 0x2000, pages: 1, fileOffset: nil)])
    }

    @Test func missingHeadIsRefused() throws {
        let dir = ImageFraming.tempDirectory()
        defer { ImageFraming.remove(dir) }
        ImageFraming.write(dir + "/pagemap-1.img", ImageFraming.image(magic: ImageMagic.pagemap, entries: []))
        #expect(throws: InspectError.self) { try DumpedMemory(directory: dir, pid: 1) }
    }
}
