import CryoLinux
import FoundationEssentials
import Glibc

/// A monitor's own log (`<exec-root>/mon/<id>.log`): cryod opens it as the monitor's
/// stderr, so the monitor's lines (the runtime's and CRIU steps' in it too, and fault-point
/// notes) survive it and cryod, which it outlives — a file, never a pipe to cryod. Capped:
/// cryod moves a file over `sizeLimit` aside (`.1`) before a new monitor starts, and the
/// monitor empties it when a line would pass the limit.
public enum MonitorLogFile {
    public static let sizeLimit = 1 << 20

    /// Opens `path` for a new monitor (append, close-on-exec, 0600), moving a full one aside
    /// first. Returns the descriptor and the size the file had (the new monitor's lines
    /// start there).
    public static func open(_ path: String) throws -> (fd: Int32, start: Int) {
        var st = stat()
        if stat(path, &st) == 0, Int(st.st_size) > sizeLimit { _ = rename(path, path + ".1") }
        let fd = try sys(Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600), "open", path)
        guard fstat(fd, &st) == 0 else {
            let e = SyscallError("fstat", path)
            close(fd)
            throw e
        }
        return (fd, Int(st.st_size))
    }

    /// The last `lines` lines written at or after `start` (all of the file if the monitor
    /// emptied it meanwhile), each cut to 400 bytes.
    public static func tail(_ path: String, from start: Int, lines: Int = 12) -> [String] {
        guard let bytes = try? FS.readBytes(path) else { return [] }
        let from = start <= bytes.count ? start : 0
        return bytes[from...].split(separator: 0x0a).suffix(lines).map { String(decoding: $0.prefix(400), as: UTF8.self) }
    }

    /// " [the monitor's log, PATH: line | line]" for an error message; empty when it says nothing.
    public static func excerpt(_ path: String, from start: Int) -> String {
        let t = tail(path, from: start)
        return t.isEmpty ? "" : " [the monitor's log, \(path): \(t.joined(separator: " | "))]"
    }
}
