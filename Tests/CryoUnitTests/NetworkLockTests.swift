import Glibc
import CryoTestSupport
import Testing
@testable import CryoLinux

/// The netlink side of the network lock: the bytes of the delete-table batch, reading the
/// kernel's answer, and (as root, in a namespace of its own) lock with nft, unlock by netlink.
@Suite struct NFTablesNetlinkTests {
    @Test func deleteTableBatchLayout() {
        let b = NFTablesNetlink.deleteTableBatch(family: NFTablesNetlink.familyInet, table: "cryo-lock", seq: 100)
        func u16(_ o: Int) -> UInt16 { NFTablesNetlink.field(UInt16.self, b, o) }
        func u32(_ o: Int) -> UInt32 { NFTablesNetlink.field(UInt32.self, b, o) }
        #expect(b.count == 20 + 36 + 20)
        // batch begin: nlmsghdr + nfgenmsg(AF_UNSPEC, v0, res_id = NFNL_SUBSYS_NFTABLES big-endian)
        #expect(u32(0) == 20 && u16(4) == 16 && u16(6) == 1 && u32(8) == 100)
        #expect(Array(b[16..<20]) == [0, 0, 0, 10])
        // delete table: type NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_DELTABLE, REQUEST|ACK, inet
        #expect(u32(20) == 36 && u16(24) == 0x0A02 && u16(26) == 5 && u32(28) == 101)
        #expect(Array(b[36..<40]) == [1, 0, 0, 0])
        // NFTA_TABLE_NAME: length 4 + 10 (NUL included), padded to 16
        #expect(u16(40) == 14 && u16(42) == 1)
        #expect(Array(b[44..<54]) == Array("cryo-lock".utf8) + [0] && Array(b[54..<56]) == [0, 0])
        // batch end
        #expect(u32(56) == 20 && u16(60) == 17 && u32(64) == 102)
    }

    func errorMessage(seq: UInt32, code: Int32) -> [UInt8] {
        var m = NFTablesNetlink.native(UInt32(36)) + NFTablesNetlink.native(UInt16(2)) + NFTablesNetlink.native(UInt16(0))
        m += NFTablesNetlink.native(seq) + NFTablesNetlink.native(UInt32(0)) + NFTablesNetlink.native(code)
        return m + [UInt8](repeating: 0, count: 16)     // the echoed request header
    }

    @Test func replyFindsTheAckOrAnError() {
        #expect(NFTablesNetlink.reply(to: 7, in: errorMessage(seq: 7, code: 0)) == 0)
        #expect(NFTablesNetlink.reply(to: 7, in: errorMessage(seq: 7, code: -ENOENT)) == -ENOENT)
        // An error on another message of the batch fails it; another message's ACK does not count.
        #expect(NFTablesNetlink.reply(to: 7, in: errorMessage(seq: 6, code: -EPERM)) == -EPERM)
        #expect(NFTablesNetlink.reply(to: 7, in: errorMessage(seq: 6, code: 0)) == nil)
        #expect(NFTablesNetlink.reply(to: 7, in: errorMessage(seq: 6, code: 0) + errorMessage(seq: 7, code: 0)) == 0)
        #expect(NFTablesNetlink.reply(to: 7, in: Array(errorMessage(seq: 7, code: 0).prefix(10))) == nil)
    }

    /// Needs root and nft, like the rest of CI: a private namespace, locked by NetworkLock's
    /// nft run, unlocked by the netlink request; a second unlock finds nothing to do.
    @Test func lockWithNftUnlockByNetlink() throws {
        let t = try TempDir()
        let ns = t.at("netns")
        defer { NetworkNamespace.remove(at: ns); t.remove() }
        try NetworkNamespace.create(at: ns)
        func tables() throws -> String {
            let r = try NetworkNamespace.withThread(in: ns) {
                try Spawn.run(path: try NetworkLock.nftPath(), args: ["nft", "list", "tables"], env: NetworkLock.env, input: [], timeoutMs: 10_000)
            }
            #expect(r.status == 0, "nft list tables: \(r.stderrString)")
            return String(decoding: r.stdout, as: UTF8.self)
        }
        try NetworkLock.lock(netnsPath: ns)
        #expect(try tables().contains("inet cryo-lock"))
        #expect(try NFTablesNetlink.deleteTable(family: NFTablesNetlink.familyInet, name: NetworkLock.table, netnsPath: ns))
        #expect(!(try tables().contains("cryo-lock")))
        #expect(try NFTablesNetlink.deleteTable(family: NFTablesNetlink.familyInet, name: NetworkLock.table, netnsPath: ns) == false)
        try NetworkLock.unlock(netnsPath: ns)      // no lock: nothing to do, no error
    }
}
