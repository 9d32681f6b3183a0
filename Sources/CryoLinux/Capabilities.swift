import CShim
import Glibc

/// Linux capabilities by OCI name ("CAP_NET_ADMIN") and number.
public enum Capabilities {
    public static let names: [String] = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
        "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
        "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ]

    /// Highest capability the running kernel knows.
    public static var lastCap: Int {
        if let s = try? FS.readString("/proc/sys/kernel/cap_last_cap"),
           let n = Int(s.trimmed) { return n }
        return names.count - 1
    }

    /// Numbers for names; unknown names are reported, not silently dropped.
    public static func numbers(_ list: [String]) throws -> Set<Int> {
        var out = Set<Int>()
        let last = lastCap
        for n in list {
            let up = n.uppercased()
            let key = up.hasPrefix("CAP_") ? up : "CAP_" + up
            guard let i = names.firstIndex(of: key) else { throw CryoFailure(.invalidArgument, "unknown capability \"\(n)\"") }
            if i <= last { out.insert(i) }   // the kernel does not know it: nothing to grant
        }
        return out
    }

    static func mask(_ s: Set<Int>) -> [UInt32] {
        var m: [UInt32] = [0, 0]
        for c in s { m[c / 32] |= UInt32(1) << UInt32(c % 32) }
        return m
    }

    /// Drops from the bounding set everything not in `bounding` (needs CAP_SETPCAP).
    public static func applyBounding(_ bounding: Set<Int>) throws {
        for c in 0...lastCap where !bounding.contains(c) {
            if cryo_prctl(PR_CAPBSET_DROP, UInt(c), 0, 0, 0) != 0 && errno != EINVAL {
                throw SyscallError("prctl(PR_CAPBSET_DROP)", names[c])
            }
        }
    }

    public static func set(effective: Set<Int>, permitted: Set<Int>, inheritable: Set<Int>) throws {
        let e = mask(effective), p = mask(permitted), i = mask(inheritable)
        try sys(cryo_capset(e, p, i), "capset")
    }

    public static func setAmbient(_ ambient: Set<Int>) throws {
        _ = cryo_prctl(PR_CAP_AMBIENT, UInt(PR_CAP_AMBIENT_CLEAR_ALL), 0, 0, 0)
        for c in ambient {
            try sys(cryo_prctl(PR_CAP_AMBIENT, UInt(PR_CAP_AMBIENT_RAISE), UInt(c), 0, 0),
                    "prctl(PR_CAP_AMBIENT_RAISE)", names[c])
        }
    }
}
