import Glibc

/// Locks a container's network namespace while CRIU works on it: one nftables table,
/// `inet cryo-lock`, whose input and output chains (hooked before any other, priority -1000)
/// drop every packet except those carrying CRIU's own mark — so no packet is answered by a
/// half-frozen or half-restored stack (no RST to a client's retransmission, no SYN-ACK).
///
/// Why not CRIU's own lock: CRIU's iptables method runs iptables-restore and
/// ip6tables-restore at lock and again at unlock, ~85 ms of a ~180 ms restore here, and at
/// restore it re-locks only namespaces it creates (cryo's are joined by path). So cryo asks
/// CRIU to skip its lock (`network_lock = SKIP`) and locks with one `nft` run, unlocks with
/// one netlink request. At dump: right after the runtime's freeze when CRIU runs inside the
/// namespace (the engine's way), else at CRIU's `network-lock` notification; unlocked again
/// if the dump fails or leaves the container running. At restore the engine locks the fresh
/// namespace before the CNI plugins give it an address, and the runtime unlocks right before
/// the restored tasks run (`pre-resume`, or `network-unlock` when CRIU runs outside the
/// namespace). A stopping checkpoint leaves the namespace locked until it is removed. No CNI
/// plugin does this job.
public enum NetworkLock {
    public static let table = "cryo-lock"
    /// criu/net.c's SOCCR_MARK: packets CRIU itself sends carry it and pass the lock.
    static let criuMark = 0xC114

    /// The table; with `loopbackPort`, TCP on the loopback device to or from that port passes
    /// too (a post-copy dump's lazy page server, reached by cryod from inside the namespace:
    /// no other interface, no other port, and the container's own tasks are frozen).
    static func rules(loopbackPort: UInt16? = nil) -> String {
        let extraIn = loopbackPort.map { " iifname \"lo\" tcp dport \($0) accept; iifname \"lo\" tcp sport \($0) accept;" } ?? ""
        let extraOut = loopbackPort.map { " oifname \"lo\" tcp dport \($0) accept; oifname \"lo\" tcp sport \($0) accept;" } ?? ""
        return """
        table inet \(table) {
          chain input { type filter hook input priority -1000; policy drop; meta mark \(criuMark) accept;\(extraIn) }
          chain output { type filter hook output priority -1000; policy drop; meta mark \(criuMark) accept;\(extraOut) }
        }

        """
    }

    /// Locks the namespace at `netnsPath` (IPv4 and IPv6), but loopback TCP on `loopbackPort`.
    /// Switches the calling thread into the namespace and back (see NetworkNamespace.withThread):
    /// a thread of its own only.
    public static func lock(netnsPath: String, loopbackPort: UInt16? = nil) throws {
        try nft(["-f", "-"], input: rules(loopbackPort: loopbackPort), in: netnsPath, what: "locking")
    }

    /// Removes the lock; a namespace without one is left as it is. This is on the path of
    /// every restore of a networked container, so it is one netlink request rather than an
    /// `nft` run (see NFTablesNetlink: ~15 ms less).
    public static func unlock(netnsPath: String) throws {
        do {
            try NFTablesNetlink.deleteTable(family: NFTablesNetlink.familyInet, name: table, netnsPath: netnsPath)
        } catch {
            throw CryoFailure(.internal, "unlocking the network of \(netnsPath)", cause: error)
        }
    }

    static let env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]

    static func nftPath() throws -> String {
        let candidates: [String] = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        guard let p = candidates.first(where: { (c: String) -> Bool in access(c, X_OK) == 0 }) else {
            throw CryoFailure(.unavailable, "the network lock needs nft, which is not installed (install nftables; scripts/setup.sh does)")
        }
        return p
    }

    static func nft(_ args: [String], input: String?, in netnsPath: String, what: String) throws {
        let path = try nftPath()
        let r = try NetworkNamespace.withThread(in: netnsPath) {
            try Spawn.run(path: path, args: ["nft"] + args, env: env, input: input.map { Array($0.utf8) } ?? [], timeoutMs: 30_000)
        }
        guard r.status == 0, !r.timedOut else {
            throw CryoFailure(.internal, "\(what) the network of \(netnsPath) (nft \(args.joined(separator: " "))) failed (status \(r.status)\(r.timedOut ? ", timed out" : "")): \(r.stderrString.trimmed)")
        }
    }
}
