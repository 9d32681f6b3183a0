import CRIUImages
import Testing

@testable import CryoCheckpointInspect

@Suite struct ImageFileTests {
    func pstree(_ pid: UInt32, _ ppid: UInt32) -> pstree_entry {
        var e = pstree_entry()
        (e.pid, e.ppid, e.pgid, e.sid, e.threads) = (pid, ppid, pid, 1, [pid])
        return e
    }

    @Test func readsEntriesAfterCommonAndImageMagic() throws {
        let bytes = ImageFraming.image(magic: ImageMagic.pstree, entries: [try ImageFraming.bytes(pstree(1, 0)), try ImageFraming.bytes(pstree(7, 1))])
        let file = try ImageFile(path: "pstree.img", bytes: bytes, expecting: ImageMagic.pstree)
        let tree = try file.messages(pstree_entry.self)
        #expect(tree.map(\.pid) == [1, 7])
        #expect(tree.map(\.ppid) == [0, 1])
        #expect(tree[1].threads == [7])
    }

    @Test func inventoryHasOnlyItsOwnMagic() throws {
        var inv = inventory_entry()
        inv.imgVersion = 2
        let bytes = ImageFraming.image(common: nil, magic: ImageMagic.inventory, entries: [try ImageFraming.bytes(inv)])
        #expect(try ImageFile(path: "inventory.img", bytes: bytes, expecting: ImageMagic.inventory).only(inventory_entry.self).imgVersion == 2)
    }

    @Test func serviceMagicForStats() throws {
        var stats = stats_entry()
        stats.dump.pagesWritten = 63
        stats.dump.frozenTime = 47264
        let bytes = ImageFraming.image(common: 0x5510_5940, magic: ImageMagic.stats, entries: [try ImageFraming.bytes(stats)])
        let dir = ImageFraming.tempDirectory()
        defer { ImageFraming.remove(dir) }
        ImageFraming.write(dir + "/stats-dump", bytes)
        let s = try #require(try CheckpointInspector.statistics(dir + "/stats-dump"))
        #expect(s.pagesWritten == 63)
        #expect(s.frozenTime == 47264)
    }

    @Test func emptyImageHasNoEntries() throws {
        let file = try ImageFile(path: "x", bytes: ImageFraming.image(magic: ImageMagic.fdinfo, entries: []), expecting: ImageMagic.fdinfo)
        #expect(file.entries.isEmpty)
        #expect(throws: InspectError.self) { try file.only(fdinfo_entry.self) }
    }

    @Test func wrongMagicIsRefusedWithBothValues() throws {
        let bytes = ImageFraming.image(magic: ImageMagic.core, entries: [])
        let e = #expect(throws: InspectError.self) { try ImageFile(path: "pstree.img", bytes: bytes, expecting: ImageMagic.pstree) }
        #expect(e?.message.contains("0x55053847") == true)
        #expect(e?.message.contains("0x50273030") == true)
    }

    @Test func truncatedEntryIsRefused() throws {
        var bytes = ImageFraming.image(magic: ImageMagic.pstree, entries: [try ImageFraming.bytes(pstree(1, 0))])
        bytes.removeLast()
        let e = #expect(throws: InspectError.self) { try ImageFile(path: "pstree.img", bytes: bytes, expecting: ImageMagic.pstree) }
        #expect(e?.message.contains("entry 0") == true)
    }

    @Test func truncatedSizeWordIsRefused() throws {
        let bytes = ImageFraming.image(magic: ImageMagic.pstree, entries: []) + [1, 0]
        #expect(throws: InspectError.self) { try ImageFile(path: "pstree.img", bytes: bytes, expecting: ImageMagic.pstree) }
        #expect(throws: InspectError.self) { try ImageFile(path: "short", bytes: [0x19, 0x43], expecting: ImageMagic.pstree) }
    }

    @Test func garbageEntryIsRefusedNamingTheMessage() throws {
        let bytes = ImageFraming.image(magic: ImageMagic.pstree, entries: [[0xff, 0xff, 0xff]])
        let file = try ImageFile(path: "pstree.img", bytes: bytes, expecting: ImageMagic.pstree)
        let e = #expect(throws: InspectError.self) { try file.messages(pstree_entry.self) }
        #expect(e?.message.contains("pstree_entry") == true)
    }
}
