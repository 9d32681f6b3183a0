import CryoLinux
import FoundationEssentials
import Glibc

extension Engine {
    public struct PruneReport: Sendable, Codable {
        public var ContainersDeleted: [String]
        public var SpaceReclaimed: UInt64
    }

    /// `docker container prune`: removes every container that is not running (created,
    /// exited, dead) and matches the filter; SpaceReclaimed is what their upper directories
    /// held. A container that cannot be removed is left, and the others still go.
    public func prune(_ filter: ContainerPruneFilter) async throws -> PruneReport {
        var report = PruneReport(ContainersDeleted: [], SpaceReclaimed: 0)
        let candidates = allRecords.filter { [.created, .exited, .dead].contains($0.status) }
            .filter { filter.matches(labels: $0.config.Labels ?? [:], created: LogReader.unixTime($0.created) ?? 0) }
        for c in candidates {
            let upper = paths.upper(c.id)
            let size = (try? await blocking { Self.diskUsage(upper) }) ?? 0
            do {
                try await remove(c.id, force: false)
            } catch {
                continue
            }
            report.ContainersDeleted.append(c.id)
            report.SpaceReclaimed += size
        }
        return report
    }

    /// Bytes of the regular files below `dir` (hard links counted once per name, as du -b).
    nonisolated static func diskUsage(_ dir: String) -> UInt64 {
        var total: UInt64 = 0
        func walk(_ d: String) {
            for name in (try? FS.listDirectory(d)) ?? [] {
                var st = stat()
                guard lstat(d + "/" + name, &st) == 0 else { continue }
                if st.st_mode & S_IFMT == S_IFDIR { walk(d + "/" + name) } else if st.st_mode & S_IFMT == S_IFREG { total += UInt64(st.st_size) }
            }
        }
        walk(dir)
        return total
    }
}
