import CryoLinux

/// CRIU's network lock, put in place by cryo in a namespace CRIU did not lock itself.
///
/// At dump CRIU locks the container's namespace (iptables chain `CRIU`: drop everything but
/// packets carrying its repair mark) and, when the container stops, leaves it locked. At
/// restore it locks only namespaces it creates; a container's namespace is external (joined
/// by path, made by cryo), so nothing would guard the window between the CNI attach and the
/// moment CRIU re-creates the sockets: a client's retransmission arriving then finds no
/// socket and the kernel answers with a RST, which kills the connection being restored.
/// `lock` installs the same chain before the attach; CRIU's own unlock at the end of the
/// restore (right before it takes the sockets out of repair mode) deletes it, as it would
/// delete its own. That is CRIU's default lock method (iptables), the one cryod's checkpoints
/// and restores use; with the nftables method CRIU would remove its nft table instead.
/// IPv4 only: cryo's networks carry no IPv6.
public enum CRIUNetworkLock {
    /// CRIU's chain, word for word what its unlock deletes (`-D INPUT -j CRIU`, `-X CRIU`);
    /// 0xC114 is libsoccr's SOCCR_MARK, set on CRIU's own repair traffic.
    static let rules = """
        *filter
        :CRIU - [0:0]
        -I INPUT -j CRIU
        -I OUTPUT -j CRIU
        -A CRIU -m mark --mark 0xC114 -j ACCEPT
        -A CRIU -j DROP
        COMMIT

        """

    /// Locks the network namespace bound at `netnsPath` (`nsenter --net=… iptables-restore`).
    public static func lock(netnsPath: String) throws {
        let nsenter = ["/usr/bin/nsenter", "/bin/nsenter", "/usr/sbin/nsenter"].first(where: FS.exists) ?? "/usr/bin/nsenter"
        let r = try Spawn.run(path: nsenter,
                              args: ["nsenter", "--net=" + netnsPath, "iptables-restore", "-w", "--noflush"],
                              env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], input: Array(rules.utf8), timeoutMs: 30_000)
        guard r.status == 0, !r.timedOut else {
            let why = r.timedOut ? "timed out" : "exit status \(r.status): \(r.stderrString.trimmingWhitespace())"
            throw NetworkError.lockFailed(netnsPath, why)
        }
    }
}
