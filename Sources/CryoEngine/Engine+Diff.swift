import CryoLinux
import FoundationEssentials
import Glibc

extension Engine {
    /// `docker diff`: the container's overlay upper directory against its image's layers.
    /// Works on a stopped container too (the upper directory stays until removal).
    public func diff(_ ref: String) async throws -> [RootfsChange] {
        let c = try resolve(ref)
        let upper = paths.upper(c.id)
        let store = images
        let skip = Self.mountedOver(c)
        return try await blocking {
            let lowers: [String]
            do { lowers = store.lowerDirs(for: try store.inspect(c.imageID)) } catch { throw EngineError.noSuchImage(c.imageRef) }
            guard FS.isDirectory(upper) else { return [] }
            let entries = try Self.upperEntries(upper, skip: skip)
            return RootfsChanges.changes(entries) { path in lowers.contains { FS.lstatMode($0 + path) != nil } }
        }
    }

    /// What cryo itself mounts over in the container's root (its /dev, /etc/hosts, bind
    /// mounts, volumes, the init): not the container's changes, left out of `diff` and `commit`.
    nonisolated static func mountedOver(_ c: StoredContainer) -> Set<String> {
        var skipped: Set<String> = ["/dev", "/proc", "/sys", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", SpecBuilder.initPath]
        for b in c.hostConfig.Binds ?? [] {
            let parts = b.split(separator: ":", omittingEmptySubsequences: false)
            if parts.count >= 2 { skipped.insert(FS.clean(String(parts[1]))) }
        }
        for v in c.volumes ?? [] { skipped.insert(v.destination) }   // --mount and anonymous volumes too
        return skipped
    }

    /// Every entry below `upper` (depth first), whiteouts marked; a directory is listed only
    /// when something below it is, or when the image does not have it (then it is added).
    nonisolated static func upperEntries(_ upper: String, skip: Set<String>) throws -> [RootfsChanges.Entry] {
        var out: [RootfsChanges.Entry] = []
        func walk(_ rel: String) throws {
            let names: [String]
            do { names = try FS.listDirectory(upper + rel) } catch {
                throw CryoFailure(.internal, "reading the container's changes in \(upper + rel)", cause: error)
            }
            for name in names.sorted() {
                let path = rel + "/" + name
                if skip.contains(path) { continue }
                var st = stat()
                guard lstat(upper + path, &st) == 0 else { continue }
                let type = st.st_mode & S_IFMT
                if type == S_IFCHR && st.st_rdev == 0 {
                    out.append(.init(path: path, isWhiteout: true))
                    continue
                }
                let before = out.count
                if type == S_IFDIR { try walk(path) }
                out.insert(.init(path: path), at: before)
                // A directory that only exists because the skipped mount points live in it
                // (/etc for /etc/hosts) is no change of the container's.
                if type == S_IFDIR, out.count == before + 1, skip.contains(where: { $0.hasPrefix(path + "/") }) {
                    out.removeLast()
                }
            }
        }
        try walk("")
        return out
    }
}
