import CShim
import Glibc

public enum Processes {
    /// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat);
    /// nil when the process does not exist. Guards against pid reuse.
    public static func startTime(pid: pid_t) -> UInt64? {
        guard let stat = try? FS.readString("/proc/\(pid)/stat"),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3); start time is field 22.
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    /// Process state letter (R, S, D, Z, T, ...).
    public static func state(pid: pid_t) -> Character? {
        guard let stat = try? FS.readString("/proc/\(pid)/stat"),
              let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ").first?.first
    }

    /// True when `pid` exists, is not a zombie and started at `startTime`.
    public static func isAlive(pid: pid_t, startTime: UInt64?) -> Bool {
        guard pid > 0, let st = self.startTime(pid: pid) else { return false }
        if let want = startTime, want != st { return false }
        return state(pid: pid) != "Z"
    }

    public static func setChildSubreaper() throws {
        try sys(cryo_prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")
    }
}
