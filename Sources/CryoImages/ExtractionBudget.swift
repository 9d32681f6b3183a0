import CryoLinux
import Glibc

/// How many bytes one image load or import may put on disk, all its extractions together
/// (a few kilobytes of gzip can expand to gigabytes). Each entry costs its size, and at
/// least a tar block, so a flood of empty files is counted too. A reference type: the
/// archive's extraction and each layer's draw on the same budget.
public final class ExtractionBudget {
    public let limit: Int64
    public private(set) var used: Int64 = 0
    /// What the limit is, for the error message ("--image-extract-limit", "free space").
    let source: String

    public init(limit: Int64, source: String) {
        self.limit = max(0, limit)
        self.source = source
    }

    /// The bytes an extraction may still write under `root`: the filesystem's free space
    /// less a reserve (a twentieth of it, at most 1 GiB), so a load never fills the disk.
    public static func freeSpace(at root: String) -> ExtractionBudget {
        var s = statvfs()
        guard statvfs(root, &s) == 0 else { return ExtractionBudget(limit: Int64.max, source: "free space (unknown)") }
        let block = Int64(s.f_frsize)
        let (free, o1) = Int64(clamping: s.f_bavail).multipliedReportingOverflow(by: block)
        let (total, o2) = Int64(clamping: s.f_blocks).multipliedReportingOverflow(by: block)
        if o1 || o2 { return ExtractionBudget(limit: Int64.max, source: "free space") }
        let reserve = min(total / 20, 1 << 30)
        return ExtractionBudget(limit: free - reserve, source: "free space on \(root)")
    }

    /// Counts `bytes` more; throws once over the limit.
    func spend(_ bytes: Int64, entry: String) throws {
        let (sum, overflow) = used.addingReportingOverflow(max(0, bytes))
        used = overflow ? Int64.max : sum
        if used > limit {
            throw CryoFailure(.invalidArchive, "image archive expands to more than \(limit) bytes (the limit, from \(source)), at entry \"\(entry)\": refused")
        }
    }
}
