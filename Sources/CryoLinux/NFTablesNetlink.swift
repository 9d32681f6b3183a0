import Glibc

/// The one nftables request the network lock makes on a restore's critical path, spoken
/// directly over netlink: delete a table (one batch: begin, NFT_MSG_DELTABLE, end).
///
/// Why not the `nft` binary: besides its start-up (~5 ms), a commit that removes base chains
/// leaves work for an RCU-deferred destructor, and closing the netlink socket afterwards
/// waits for it (`nft_rcv_nl_event` flushes it): ~10–15 ms in which the restored container
/// would wait. The deletion is in force once the kernel acknowledges it, so this client
/// returns at the ACK and closes its socket on a detached thread.
public enum NFTablesNetlink {
    static let netlinkNetfilter: Int32 = 12          // NETLINK_NETFILTER
    static let subsysNFTables: UInt16 = 10           // NFNL_SUBSYS_NFTABLES
    static let batchBegin: UInt16 = 16               // NFNL_MSG_BATCH_BEGIN (NLMSG_MIN_TYPE)
    static let batchEnd: UInt16 = 17                 // NFNL_MSG_BATCH_END
    static let msgDelTable: UInt16 = 2               // NFT_MSG_DELTABLE
    static let attrTableName: UInt16 = 1             // NFTA_TABLE_NAME
    static let nlmsgError: UInt16 = 2                // NLMSG_ERROR
    static let flagRequest: UInt16 = 1               // NLM_F_REQUEST
    static let flagAck: UInt16 = 4                   // NLM_F_ACK
    /// NFPROTO_INET: a table of the `inet` family (IPv4 and IPv6).
    public static let familyInet: UInt8 = 1

    /// The batch that deletes `table`; the delete carries sequence number `seq` + 1.
    static func deleteTableBatch(family: UInt8, table: String, seq: UInt32) -> [UInt8] {
        let name = attribute(attrTableName, Array(table.utf8) + [0])
        return message(type: batchBegin, flags: flagRequest, seq: seq, family: 0, resID: subsysNFTables, body: [])
            + message(type: subsysNFTables << 8 | msgDelTable, flags: flagRequest | flagAck, seq: seq + 1,
                      family: family, resID: 0, body: name)
            + message(type: batchEnd, flags: flagRequest, seq: seq + 2, family: 0, resID: subsysNFTables, body: [])
    }

    /// nlmsghdr (native byte order) + nfgenmsg (family, version 0, big-endian res_id) + body.
    static func message(type: UInt16, flags: UInt16, seq: UInt32, family: UInt8, resID: UInt16, body: [UInt8]) -> [UInt8] {
        let payload = [family, 0, UInt8(resID >> 8), UInt8(resID & 0xff)] + body
        var m = native(UInt32(16 + payload.count)) + native(type) + native(flags) + native(seq) + native(UInt32(0))
        m += payload
        return padded(m)
    }

    /// nlattr: length (header + payload, unpadded), type, payload padded to 4 bytes.
    static func attribute(_ type: UInt16, _ payload: [UInt8]) -> [UInt8] {
        padded(native(UInt16(4 + payload.count)) + native(type) + payload)
    }

    static func native<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }
    static func padded(_ b: [UInt8]) -> [UInt8] { b + [UInt8](repeating: 0, count: (4 - b.count % 4) % 4) }

    /// What the kernel said to the request with sequence number `seq`, from a buffer of
    /// netlink messages: 0 (done), a negative errno, or nil (not in this buffer).
    static func reply(to seq: UInt32, in buf: [UInt8]) -> Int32? {
        var off = 0
        while off + 16 <= buf.count {
            let len = Int(field(UInt32.self, buf, off))
            let type = field(UInt16.self, buf, off + 4)
            let mseq = field(UInt32.self, buf, off + 8)
            guard len >= 16, off + len <= buf.count else { return nil }
            // An error for any message of the batch fails it; the ACK names the delete.
            if type == nlmsgError, off + 20 <= buf.count {
                let code = field(Int32.self, buf, off + 16)
                if code != 0 || mseq == seq { return code }
            }
            off += (len + 3) & ~3
        }
        return nil
    }

    /// A native-order integer at byte `off` of a netlink buffer.
    static func field<T: FixedWidthInteger>(_: T.Type, _ buf: [UInt8], _ off: Int) -> T {
        var v: T = 0
        withUnsafeMutableBytes(of: &v) { dst in
            for i in 0..<MemoryLayout<T>.size { dst[i] = buf[off + i] }
        }
        return v
    }

    /// Deletes `table` of `family` in the network namespace at `netnsPath`. Returns false when
    /// there was no such table (nothing to do). The calling thread switches into the
    /// namespace only to open the socket (see NetworkNamespace.withThread).
    @discardableResult
    public static func deleteTable(family: UInt8, name: String, netnsPath: String, timeoutMs: Int32 = 5000) throws -> Bool {
        let fd = try NetworkNamespace.withThread(in: netnsPath) {
            try sys(socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), netlinkNetfilter),
                    "socket(AF_NETLINK, NETLINK_NETFILTER)", netnsPath)
        }
        // Closing may wait for the commit's deferred destructor: not on the caller's time.
        defer { DetachedThread { close(fd) }.start() }
        let seq = UInt32(truncatingIfNeeded: Monotonic.now().nanoseconds / 1_000_000)
        let batch = deleteTableBatch(family: family, table: name, seq: seq)
        // An unconnected netlink socket sends to the kernel (port 0).
        let sent = batch.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == batch.count else { throw SyscallError("send(nftables delete table \(name))", netnsPath) }
        var buf = [UInt8](repeating: 0, count: 8192)
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = retryingEINTR { poll(&p, 1, timeoutMs) }
            guard ready > 0 else { throw CryoFailure(.internal, "deleting nftables table \(name) in \(netnsPath): no answer from the kernel within \(timeoutMs) ms") }
            let n = retryingEINTR { recv(fd, &buf, buf.count, 0) }
            guard n > 0 else { throw SyscallError("recv(nftables delete table \(name))", netnsPath) }
            guard let code = reply(to: seq + 1, in: Array(buf[0..<n])) else { continue }
            if code == 0 { return true }
            if code == -ENOENT { return false }
            throw CryoFailure(.internal, "deleting nftables table \(name) in \(netnsPath): \(String(cString: strerror(-code)))")
        }
    }
}
