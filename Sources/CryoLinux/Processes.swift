import CShim
import Glibc

public enum Processes {
    /// The fields of /proc/PID/stat after the command name: [0] is the state
    /// (field 3), [19] the start time (field 22). Nil when the process is gone.
    static func statFields(pid: pid_t) -> [Substring]? {
        guard let stat = try? FS.readString("/proc/\(pid)/stat"),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? fields : nil
    }

    /// Start time of a process in clock ticks since boot; guards against pid reuse.
    public static func startTime(pid: pid_t) -> UInt64? {
        statFields(pid: pid).flatMap { UInt64($0[19]) }
    }

    /// Process state letter (R, S, D, Z, T, ...).
    public static func state(pid: pid_t) -> Character? {
        statFields(pid: pid)?[0].first
    }

    /// True when `pid` exists, is not a zombie and started at `startTime` (one read of /proc).
    public static func isAlive(pid: pid_t, startTime: UInt64?) -> Bool {
        guard pid > 0, let f = statFields(pid: pid), let st = UInt64(f[19]) else { return false }
        if let want = startTime, want != st { return false }
        return f[0].first != "Z"
    }

    /// The parent pid of `pid` (field 4 of /proc/PID/stat); nil when it is gone.
    public static func parent(pid: pid_t) -> pid_t? {
        statFields(pid: pid).flatMap { pid_t($0[1]) }
    }

    /// True when `pid` is `ancestor` or one of its descendants (its parent chain reaches it).
    public static func descends(_ pid: pid_t, from ancestor: pid_t) -> Bool {
        var p = pid
        for _ in 0..<4096 {
            if p == ancestor { return true }
            guard p > 1, let up = parent(pid: p) else { return false }
            p = up
        }
        return false
    }

    /// Every live descendant of `pid` (children, their children, …), from one walk of /proc.
    public static func descendants(of pid: pid_t) -> [pid_t] {
        var children: [pid_t: [pid_t]] = [:]
        for name in (try? FS.listDirectory("/proc")) ?? [] {
            guard let p = pid_t(name), let f = statFields(pid: p), f[0].first != "Z", let pp = pid_t(f[1]) else { continue }
            children[pp, default: []].append(p)
        }
        var out: [pid_t] = []
        var queue = children[pid] ?? []
        while let p = queue.popLast() {
            out.append(p)
            queue += children[p] ?? []
        }
        return out
    }

    public static func setChildSubreaper() throws {
        try sys(cryo_prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")
    }
}
