import CRIURPC
import CryoLinux

/// Picks the lines that explain a CRIU failure out of its log.
public enum CRIULog {
    /// Lines mentioning an error, minus the known-harmless ones, at most `limit`, last ones first kept.
    public static func errorLines(_ text: String, limit: Int = 12) -> [String] {
        let harmless = ["RLIMIT_NOFILE", "Can't setup RLIMIT"]
        let lines = text.split(separator: "\n").map(String.init).filter { line in
            (line.contains("Error") || line.contains("error") || line.contains("FAIL") || line.contains("Can't") || line.contains("can't"))
                && !harmless.contains { line.contains($0) }
        }
        return Array(lines.suffix(limit))
    }

    public static func excerpt(logPath: String) -> String {
        guard let text = try? FS.readString(logPath) else { return "(no CRIU log at \(logPath))" }
        let lines = errorLines(text)
        if lines.isEmpty { return "(see \(logPath))" }
        return lines.map { "  " + $0 }.joined(separator: "\n") + "\n  (full log: \(logPath))"
    }
}


extension CRIULog {
    /// CRIU's one-line reason: the first error line of the log that is neither
    /// harmless (RLIMIT_NOFILE here) nor a summary ("... failed with -1",
    /// "Dumping FAILED") — the root cause. cr_errmsg is only the fallback: it is
    /// the log's first error even when that one is harmless.
    public static func reason(_ resp: criu_resp, logPath: String) -> String {
        if let text = try? FS.readString(logPath), let last = errorLines(text).first(where: { !$0.contains("FAILED") && !$0.contains("failed with") }) {
            // "(00.078259) Error (criu/files-reg.c:1790): Can't lookup ..." → the part after "): "
            if let r = last.range(of: "): ") { return String(last[r.upperBound...]) }
            return last
        }
        return resp.hasCrErrmsg ? resp.crErrmsg : "no reason given"
    }
}
