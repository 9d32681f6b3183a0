import CArchive
import Crypto
import CryoLinux
import Glibc

/// One entry of a tar archive, as listed by `ArchiveReader.list`.
public struct ArchiveEntry: Equatable, Sendable {
    public enum Kind: Equatable, Sendable { case file, directory, symlink, hardlink, characterDevice, blockDevice, fifo, socket, other }
    public var path: String
    public var kind: Kind
    public var size: Int64
    public var mode: UInt32
    public var uid: Int64
    public var gid: Int64
    public var linkTarget: String?
}

/// Reads tar archives (plain, gzip, zstd, xz, bzip2 — any filter libarchive has) and
/// extracts them safely into a directory.
///
/// Safety: an entry whose path is absolute or has a ".." component is refused; a
/// hardlink whose target is absolute or has ".." is refused; an entry (or hardlink
/// target) whose parent directory on disk is a symlink is refused, so a symlink in the
/// archive can never be used to write outside the root. Symlinks themselves may point
/// anywhere (they are resolved inside the container's root at run time) but are never
/// followed during extraction. Each refusal names the entry and the reason. libarchive's
/// own `ARCHIVE_EXTRACT_SECURE_SYMLINKS | SECURE_NODOTDOT` checks run as a second line.
public enum ArchiveReader {
    public struct Options: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// Turn `.wh.*` files into overlayfs whiteouts (needs root).
        public static let overlayWhiteouts = Options(rawValue: 1)
        /// Restore numeric owners (uid/gid) from the archive (only root can; otherwise
        /// libarchive reports a warning and the files keep our uid).
        public static let owners = Options(rawValue: 2)
    }

    /// Lists the entries of an archive (paths as stored).
    public static func list(_ archivePath: String) throws -> [ArchiveEntry] {
        let a = try openReader(archivePath)
        defer { archive_read_free(a) }
        var out: [ArchiveEntry] = []
        try forEachHeader(a, archivePath) { out.append(describe($0)) }
        return out
    }

    /// Calls `body` for each entry header until the end of the archive.
    static func forEachHeader(_ a: OpaquePointer, _ archivePath: String, _ body: (OpaquePointer) throws -> Void) throws {
        var entry: OpaquePointer?
        while true {
            let r = archive_read_next_header(a, &entry)
            if r == ARCHIVE_EOF { return }
            if r < ARCHIVE_WARN { throw archiveError(a, "reading", archivePath) }
            guard let entry else { return }
            try body(entry)
        }
    }

    /// Extracts `archivePath` into the existing directory `directory`.
    /// With a `budget`, refuses (throws) as soon as the bytes written would exceed it.
    public static func extract(_ archivePath: String, into directory: String, options: Options = [],
                               budget: ExtractionBudget? = nil) throws {
        guard let resolved = realpath(directory, nil) else { throw SyscallError("realpath", directory) }
        let root = String(cString: resolved)
        free(resolved)

        let a = try openReader(archivePath)
        defer { archive_read_free(a) }
        guard let w = archive_write_disk_new() else { throw CryoFailure(.internal, "archive_write_disk_new failed") }
        defer { archive_write_free(w) }
        var flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL
            | ARCHIVE_EXTRACT_FFLAGS | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT
        // ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS cannot be set: libarchive 3.6 writes
        // relative to the process cwd, so we hand it absolute paths under `root`
        // (after refusing absolute entry paths ourselves, below).
        if options.contains(.owners) { flags |= ARCHIVE_EXTRACT_OWNER }
        archive_write_disk_set_options(w, flags)

        try forEachHeader(a, archivePath) { entry in
            guard let rawC = archive_entry_pathname(entry), let raw = String(validatingCString: rawC) else {
                throw CryoFailure(.invalidArchive, "\(archivePath): refusing an entry whose name is not valid UTF-8")
            }
            let rel = try safeRelative(raw, entry: raw, what: "path")
            if rel.isEmpty { return }  // "./" — the root itself
            // Each entry costs a tar block (inode and metadata); its data is counted as written.
            try budget?.spend(512, entry: raw)

            if options.contains(.overlayWhiteouts) {
                let action = WhiteoutAction.of(path: rel)
                if action != .extract {
                    try refuseSymlinkedParents(rel, root: root, entry: raw)
                    try OverlayWhiteout.apply(action, root: root, entry: raw)
                    return
                }
            }
            try refuseSymlinkedParents(rel, root: root, entry: raw)
            if let hlC = archive_entry_hardlink(entry) {
                guard let hl = String(validatingCString: hlC) else {
                    throw CryoFailure(.invalidArchive, "archive entry \"\(raw)\": refused: hardlink target is not valid UTF-8")
                }
                let target = try safeRelative(hl, entry: raw, what: "hardlink target")
                if target.isEmpty { throw CryoFailure(.invalidArchive, "archive entry \"\(raw)\": refused: hardlink to the root directory") }
                try refuseSymlinkedParents(target, root: root, entry: raw)
                archive_entry_copy_hardlink(entry, root + "/" + target)
            }
            archive_entry_copy_pathname(entry, root + "/" + rel)

            var hr = archive_write_header(w, entry)
            if hr < ARCHIVE_WARN { throw archiveError(w, "archive entry \"\(raw)\": refused or failed", "") }
            if archive_entry_size(entry) > 0 && archive_entry_hardlink(entry) == nil {
                try copyData(from: a, to: w, entry: raw, budget: budget)
            }
            hr = archive_write_finish_entry(w)
            if hr < ARCHIVE_WARN { throw archiveError(w, "archive entry \"\(raw)\": finishing failed", "") }
        }
        if archive_write_close(w) < ARCHIVE_WARN { throw archiveError(w, "finishing extraction of", archivePath) }
    }

    /// sha256 of the archive's *decompressed* bytes (a layer's diff_id), streamed.
    /// With `limit`, refuses a stream that decompresses to more than that many bytes.
    public static func uncompressedDigest(_ archivePath: String, limit: Int64? = nil) throws -> Digest {
        guard let a = archive_read_new() else { throw CryoFailure(.internal, "archive_read_new failed") }
        defer { archive_read_free(a) }
        archive_read_support_filter_all(a)
        archive_read_support_format_raw(a)
        if archive_read_open_filename(a, archivePath, 1 << 16) != ARCHIVE_OK {
            throw archiveError(a, "opening", archivePath)
        }
        var entry: OpaquePointer?
        var h = SHA256()
        let r = archive_read_next_header(a, &entry)
        if r == ARCHIVE_OK || r == ARCHIVE_WARN {
            var buf = [UInt8](repeating: 0, count: 1 << 20)
            var total: Int64 = 0
            while true {
                let n = buf.withUnsafeMutableBytes { archive_read_data(a, $0.baseAddress, $0.count) }
                if n < 0 { throw archiveError(a, "decompressing", archivePath) }
                if n == 0 { break }
                total += Int64(n)
                if let limit, total > limit {
                    throw CryoFailure(.invalidArchive, "\(archivePath) decompresses to more than \(limit) bytes (the limit): refused")
                }
                buf.withUnsafeBytes { h.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            }
        } else if r != ARCHIVE_EOF {
            throw archiveError(a, "decompressing", archivePath)
        }
        return Digest(finalizing: h)
    }

    // MARK: - checks (internal for tests)

    /// "./a/b/" → "a/b". Throws for absolute paths and ".." components.
    static func safeRelative(_ path: String, entry: String, what: String) throws -> String {
        if path.hasPrefix("/") {
            throw CryoFailure(.invalidArchive, "archive entry \"\(entry)\": refused: \(what) \"\(path)\" is absolute")
        }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        if parts.contains("..") {
            throw CryoFailure(.invalidArchive, "archive entry \"\(entry)\": refused: \(what) \"\(path)\" contains a \"..\" component")
        }
        return parts.filter { $0 != "." }.joined(separator: "/")
    }

    /// Refuses `rel` if any existing directory on its way (not the entry itself) is a symlink.
    static func refuseSymlinkedParents(_ rel: String, root: String, entry: String) throws {
        let parts = rel.split(separator: "/")
        var current = root
        for part in parts.dropLast() {
            current += "/" + part
            guard let mode = FS.lstatMode(current) else { return }  // not there yet: created as a directory
            if mode == S_IFLNK {
                let target = FS.readlink(current) ?? "?"
                let inside = String(current.dropFirst(root.count + 1))
                throw CryoFailure(.invalidArchive, "archive entry \"\(entry)\": refused: \"\(inside)\" is a symlink (to \"\(target)\"); writing through it could leave the root")
            }
            if mode != S_IFDIR {
                let inside = String(current.dropFirst(root.count + 1))
                throw CryoFailure(.invalidArchive, "archive entry \"\(entry)\": refused: \"\(inside)\" is not a directory")
            }
        }
    }

    // MARK: - libarchive plumbing

    static func openReader(_ path: String) throws -> OpaquePointer {
        guard let a = archive_read_new() else { throw CryoFailure(.internal, "archive_read_new failed") }
        archive_read_support_filter_all(a)
        archive_read_support_format_tar(a)
        if archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK {
            let err = archiveError(a, "opening", path)
            archive_read_free(a)
            throw err
        }
        return a
    }

    static func copyData(from a: OpaquePointer, to w: OpaquePointer, entry: String, budget: ExtractionBudget? = nil) throws {
        var buf: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        while true {
            let r = archive_read_data_block(a, &buf, &size, &offset)
            if r == ARCHIVE_EOF { return }
            if r < ARCHIVE_WARN { throw archiveError(a, "archive entry \"\(entry)\": reading data failed", "") }
            try budget?.spend(Int64(size), entry: entry)
            // A failed write(2) (ENOSPC, EIO) is only a warning to libarchive: with its errno
            // it is a failure here, or the file would be kept truncated.
            let wr = archive_write_data_block(w, buf, size, offset)
            if wr < ARCHIVE_WARN || (wr < ARCHIVE_OK && archive_errno(w) > 0) {
                throw archiveError(w, "archive entry \"\(entry)\": writing data failed", "")
            }
        }
    }

    static func archiveError(_ a: OpaquePointer, _ what: String, _ path: String) -> CryoFailure {
        let msg = archive_error_string(a).map { String(cString: $0) } ?? "unknown libarchive error"
        let text = path.isEmpty ? "\(what): \(msg)" : "\(what) \(path): \(msg)"
        // libarchive keeps the errno of a failed read or write: no space or an I/O error
        // is the host's failure, not the archive's.
        let host = SyscallError("libarchive", path, errno: archive_errno(a))
        if host.errno > 0 && host.isHostResourceFailure { return CryoFailure(.internal, text, cause: host) }
        return CryoFailure(.invalidArchive, text)
    }

    static func describe(_ e: OpaquePointer) -> ArchiveEntry {
        let type = archive_entry_filetype(e)
        var kind: ArchiveEntry.Kind
        switch type {
        case S_IFREG: kind = .file
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symlink
        case S_IFCHR: kind = .characterDevice
        case S_IFBLK: kind = .blockDevice
        case S_IFIFO: kind = .fifo
        case S_IFSOCK: kind = .socket
        default: kind = .other
        }
        var link = archive_entry_symlink(e).map { String(cString: $0) }
        if let hl = archive_entry_hardlink(e) { kind = .hardlink; link = String(cString: hl) }
        return ArchiveEntry(
            path: archive_entry_pathname(e).map { String(cString: $0) } ?? "",
            kind: kind, size: archive_entry_size(e), mode: UInt32(archive_entry_perm(e)),
            uid: archive_entry_uid(e), gid: archive_entry_gid(e), linkTarget: link)
    }
}
