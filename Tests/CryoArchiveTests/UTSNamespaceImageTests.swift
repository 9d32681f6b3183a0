import CryoArchive
import Testing

/// A clone's UTS image gets its own hostname; the domain name and the header stay.
@Suite struct UTSNamespaceImageTests {
    static func image(_ nodename: String, _ domain: String) -> [UInt8] {
        let msg = [0x0a, UInt8(nodename.utf8.count)] + Array(nodename.utf8) + [0x12, UInt8(domain.utf8.count)] + Array(domain.utf8)
        return [1, 2, 3, 4, 5, 6, 7, 8, UInt8(msg.count), 0, 0, 0] + msg
    }

    @Test func theNodenameIsReplacedAndTheRestKept() throws {
        let out = try UTSNamespaceImage.rewrite(Self.image("0123456789ab", "(none)"), hostname: "clone-host", file: "utsns-12.img")
        #expect(out == Self.image("clone-host", "(none)"))
    }

    @Test func aBrokenImageIsRefused() {
        #expect(throws: ArchiveError.self) { try UTSNamespaceImage.rewrite([1, 2, 3], hostname: "x", file: "f") }
        var cut = Self.image("abc", "d")
        cut[8] = 200   // the entry claims more bytes than there are
        #expect(throws: ArchiveError.self) { try UTSNamespaceImage.rewrite(cut, hostname: "x", file: "f") }
    }
}
