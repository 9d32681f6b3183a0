import FoundationEssentials

/// What the lazy-pages watchdog (`cryo-monitor lazy-pages-watchdog`) records when B's
/// `criu lazy-pages` ended without every page: written (atomically, durably) after it killed
/// the restored copy, so that a cryod that was not there to see it says why the copy is gone.
public struct LazyPagesWatchdogReport: Codable, Sendable, Equatable {
    /// criu lazy-pages' exit code (128+N: killed by signal N).
    public var lazyPagesStatus: Int32
    /// Whether the container's processes were killed (false: it was never there to kill).
    public var killed: Bool
    public var at: String
    /// The last error line of criu lazy-pages' log, or why the kill failed.
    public var detail: String
    public init(lazyPagesStatus: Int32, killed: Bool, at: String, detail: String) {
        self.lazyPagesStatus = lazyPagesStatus
        self.killed = killed
        self.at = at
        self.detail = detail
    }

    /// Its file in criu lazy-pages' work directory.
    public static func path(workDir: String) -> String { workDir + "/lazy-pages-watchdog.json" }
}
