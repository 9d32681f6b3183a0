import CArchive
import CryoImages
import CryoLinux
import FoundationEssentials
import Glibc

/// The inner tars of a checkpoint archive (`rootfs-diff.tar`, `devshm-checkpoint.tar`): plain
/// tars of a directory tree with owners, modes and times. An overlay upper directory's
/// whiteouts (0:0 character devices) are not archived but returned, as podman's
/// `deleted.files` lists them (absolute paths inside the container).
public enum InnerTar {
    /// Writes the tree under `directory` into the new file `tarPath` (mode 0600). Returns the
    /// deleted paths (whiteouts) when `whiteouts` is set; other device nodes, fifos and
    /// sockets are refused with their path.
    @discardableResult
    public static func write(_ directory: String, to tarPath: String, whiteouts: Bool) throws -> [String] {
        var deleted: [String] = []
        try writeTar(tarPath) { a in try walk(directory, rel: "", a: a, whiteouts: whiteouts, deleted: &deleted) }
        return deleted
    }

    /// A new plain tar file at `tarPath` (mode 0600, never replacing one), its entries written
    /// by `body`.
    static func writeTar(_ tarPath: String, _ body: (OpaquePointer) throws -> Void) throws {
        let fd = open(tarPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ArchiveError.own("cannot create \(tarPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard let a = archive_write_new() else { throw ArchiveError.own("archive_write_new failed") }
        defer { archive_write_free(a) }
        archive_write_set_format_pax_restricted(a)
        guard archive_write_open_fd(a, fd) == ARCHIVE_OK else { throw CheckpointArchiveWriter.error(a, "opening \(tarPath)") }
        try body(a)
        guard archive_write_close(a) == ARCHIVE_OK else { throw CheckpointArchiveWriter.error(a, "finishing \(tarPath)") }
    }

    static func walk(_ root: String, rel: String, a: OpaquePointer, whiteouts: Bool, deleted: inout [String]) throws {
        let dir = rel.isEmpty ? root : root + "/" + rel
        for name in try FS.listDirectory(dir).sorted() {
            let r = rel.isEmpty ? name : rel + "/" + name
            let full = root + "/" + r
            var st = stat()
            guard lstat(full, &st) == 0 else { throw ArchiveError.own("lstat \(full): \(String(cString: strerror(errno)))") }
            let type = st.st_mode & S_IFMT
            if type == S_IFCHR && st.st_rdev == 0 && whiteouts {
                deleted.append("/" + r)
                continue
            }
            guard type == S_IFREG || type == S_IFDIR || type == S_IFLNK else {
                throw ArchiveError("\(full) is a device, fifo or socket: it cannot be carried in a checkpoint archive", code: .unsupported)
            }
            try writeEntry(a, full: full, name: r, st: st)
            if type == S_IFDIR { try walk(root, rel: r, a: a, whiteouts: whiteouts, deleted: &deleted) }
        }
    }

    /// One tar entry for the file at `full` (stat `st`), named `name`: header, then the
    /// contents of a regular file (its size taken at stat time; a file that shrank is an error).
    static func writeEntry(_ a: OpaquePointer, full: String, name: String, st: stat) throws {
        var st = st
        let type = st.st_mode & S_IFMT
        let e = archive_entry_new()!
        defer { archive_entry_free(e) }
        archive_entry_copy_stat(e, &st)
        archive_entry_copy_pathname(e, name)
        archive_entry_set_nlink(e, 1)
        if type == S_IFLNK {
            guard let target = FS.readlink(full) else { throw ArchiveError.own("readlink \(full) failed") }
            archive_entry_copy_symlink(e, target)
            archive_entry_set_size(e, 0)
        }
        if type != S_IFREG { archive_entry_set_size(e, 0) }
        guard archive_write_header(a, e) == ARCHIVE_OK else { throw CheckpointArchiveWriter.error(a, "archiving \(full)") }
        guard type == S_IFREG && st.st_size > 0 else { return }
        let f = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard f >= 0 else { throw ArchiveError.own("open \(full): \(String(cString: strerror(errno)))") }
        defer { close(f) }
        var left = Int64(st.st_size)
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while left > 0 {
            let n = buf.withUnsafeMutableBytes { read(f, $0.baseAddress, min($0.count, Int(left))) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ArchiveError.own("reading \(full): it shrank while being archived") }
            guard buf.withUnsafeBytes({ archive_write_data(a, $0.baseAddress, n) }) == n else {
                throw CheckpointArchiveWriter.error(a, "archiving \(full)")
            }
            left -= Int64(n)
        }
    }

    /// Unpacks an inner tar into `directory` with CryoImages' safe extraction (no path
    /// escape, nothing written through a symlink), owners kept, within `budget`.
    public static func extract(_ tarPath: String, into directory: String, budget: ExtractionBudget) throws {
        try ArchiveReader.extract(tarPath, into: directory, options: [.owners], budget: budget)
    }

    /// podman's `deleted.files` (JSON array of absolute paths) as overlay whiteouts in `upper`.
    public static func applyDeletions(_ paths: [String], upper: String) throws {
        for p in paths {
            let rel = try CheckpointArchiveReader.memberName(String(p.drop(while: { $0 == "/" })))
            guard !rel.isEmpty else { throw ArchiveError("deleted.files names the root directory: refused") }
            let target = try FS.secureJoin(root: upper, rel)
            try FS.mkdirAll(FS.parent(target), mode: 0o755)
            if FS.lstatMode(target) != nil { try FS.removeAll(target) }
            guard mknod(target, S_IFCHR, 0) == 0 else {
                throw ArchiveError.own("making the whiteout for deleted \(p) at \(target): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Checked before anything is created: names inside the tree, hard links inside it, no
    /// device nodes. Symlinks may point anywhere (they resolve inside the container);
    /// extraction never writes through one.
    public static func check(_ path: String, member: String) throws {
        let entries: [ArchiveEntry]
        do { entries = try ArchiveReader.list(path) } catch {
            throw ArchiveError("\(member) is not a readable tar: \(error)")
        }
        for e in entries {
            do { _ = try CheckpointArchiveReader.memberName(e.path) } catch let x as ArchiveError {
                throw ArchiveError("\(member): \(x.message)")
            }
            switch e.kind {
            case .file, .directory, .symlink: break
            case .hardlink:
                do { _ = try CheckpointArchiveReader.memberName(e.linkTarget ?? "") } catch let x as ArchiveError {
                    throw ArchiveError("\(member): hard link \(e.path) → \(e.linkTarget ?? ""): \(x.message)")
                }
            default:
                throw ArchiveError("\(member): \(e.path) is a device, fifo or socket: refused")
            }
        }
    }
}
