import CryoLinux
import Glibc

/// CRIU's network lock, put on a network namespace that cryo creates for a restore.
///
/// At dump CRIU locks the container's namespace itself (after freezing, at the
/// `network-lock` notification: iptables rules inside the namespace that drop every packet
/// but its own), and unlocks it when the dump fails or with --leave-running. After a dump
/// that stops the container the locked namespace is removed with it. At restore CRIU
/// re-locks only namespaces it creates (`--empty-ns net`); an external namespace — cryo's
/// namespaces are joined by path — arrives as it is, yet CRIU still runs its unlock at the
/// end (`network-unlock`). So without this, the restored address answers (RSTs to a
/// client's retransmits, SYN-ACKs) while the sockets are still being rebuilt, and CRIU's
/// unlock fails ("iptables-restore: Bad rule"). cryo therefore installs the same rules in
/// the fresh namespace before the CNI plugins give it an address; CRIU's unlock, just before
/// the restored tasks run, removes them. No CNI plugin does this job.
public enum NetworkLock {
    /// criu/net.c's SOCCR_MARK: packets CRIU itself sends carry it and pass the lock.
    static let criuMark = 0xC114

    /// The rule set, in iptables-restore's format: a chain named CRIU (the name CRIU's unlock
    /// deletes), jumped to first from INPUT and OUTPUT, accepting only CRIU's mark.
    static var rules: String {
        """
        *filter
        :CRIU - [0:0]
        -I INPUT -j CRIU
        -I OUTPUT -j CRIU
        -A CRIU -m mark --mark \(criuMark) -j ACCEPT
        -A CRIU -j DROP
        COMMIT

        """
    }

    /// Locks the namespace at `netnsPath` for IPv4 and, when the kernel has it, IPv6 (CRIU
    /// unlocks both). Blocking: call it on a pool thread (it switches that thread's namespace).
    public static func lock(netnsPath: String) throws {
        var tools = ["iptables-restore"]
        if FS.exists("/proc/sys/net/ipv6") { tools.append("ip6tables-restore") }
        let dirs = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        let input = Array(rules.utf8)
        try NetworkNamespace.withThread(in: netnsPath) {
            for tool in tools {
                guard let path = dirs.map({ $0 + "/" + tool }).first(where: { access($0, X_OK) == 0 }) else {
                    throw CryoError("locking the network of \(netnsPath) for the restore: \(tool) not found (install iptables)")
                }
                let r = try Spawn.run(path: path, args: [tool, "-w", "--noflush"], env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                                      input: input, timeoutMs: 30_000)
                guard r.status == 0, !r.timedOut else {
                    throw CryoError("locking the network of \(netnsPath) for the restore: \(tool) failed (status \(r.status)\(r.timedOut ? ", timed out" : "")): \(r.stderrString.trimmingWhitespace())")
                }
            }
        }
    }
}
