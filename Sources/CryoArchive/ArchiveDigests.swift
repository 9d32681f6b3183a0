import FoundationEssentials

/// The archive's table of contents, `cryo-digests.json`: every other member's path, size and
/// sha256 (of its bytes as stored, i.e. the inner tars as tars). The reader refuses an
/// archive whose members differ from it in any way: missing, extra, longer, shorter, changed.
public struct ArchiveDigests: Codable, Equatable, Sendable {
    public struct Member: Codable, Equatable, Sendable {
        public var path: String
        public var size: Int64
        public var sha256: String
        public init(path: String, size: Int64, sha256: String) {
            self.path = path
            self.size = size
            self.sha256 = sha256
        }
    }
    public var version: Int = 1
    public var members: [Member]

    public init(members: [Member]) { self.members = members }

    /// nil when `found` (what the reader hashed) is exactly what was recorded; else the problem.
    public func mismatch(_ found: [String: (size: Int64, sha256: String)]) -> String? {
        var recorded: [String: Member] = [:]
        for m in members {
            if recorded[m.path] != nil { return "the digest list names \(m.path) twice" }
            recorded[m.path] = m
        }
        for m in members.sorted(by: { $0.path < $1.path }) {
            guard let f = found[m.path] else { return "member \(m.path) is recorded in \(CheckpointArchiveLayout.digests) but missing from the archive" }
            if f.size != m.size { return "member \(m.path) has \(f.size) bytes, \(m.size) were recorded" }
            if f.sha256 != m.sha256 { return "member \(m.path) has sha256 \(f.sha256), \(m.sha256) was recorded: the archive was altered or damaged" }
        }
        for p in found.keys.sorted() where recorded[p] == nil {
            return "member \(p) is not recorded in \(CheckpointArchiveLayout.digests)"
        }
        return nil
    }
}
