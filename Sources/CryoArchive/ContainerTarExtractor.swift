import CArchive
import CryoLinux
import Glibc

/// Unpacks the tar of `PUT /containers/{id}/archive` (`docker cp … CONTAINER:PATH`) into a
/// directory of a container, given as a descriptor already resolved inside the container's
/// root. The container may be running and changing its files meanwhile, and the tar is the
/// client's: nothing here follows a link or a name the kernel would resolve from cryod's
/// own root.
///
/// - Every entry is checked before anything is written (`check`): names relative and
///   without `..`, hard-link targets too; regular files, directories, symlinks, hard links
///   and fifos only (a device node is refused: a container gets its devices from its
///   configuration, not from a copy); at most `Limits.maxEntries` entries and
///   `Limits.maxBytes` bytes (sizes plus 512 bytes an entry).
/// - Each entry's parent directories are walked from the destination's descriptor with
///   `openat(O_DIRECTORY | O_NOFOLLOW)`, made when missing (0755, root); an existing
///   symlink on the way is refused, never followed — neither one that was in the
///   container nor one the archive made a moment before.
/// - Files are made `O_CREAT | O_EXCL | O_NOFOLLOW`, their owner, mode and times set
///   through their descriptor; symlinks by `symlinkat`, their owner and times with
///   `AT_SYMLINK_NOFOLLOW`; hard links by `linkat` without following, between two
///   descriptors inside the destination.
/// - An existing entry is replaced (a directory merged with a directory), as docker does;
///   with `noOverwriteDirNonDir` a directory is never replaced by a non-directory nor the
///   other way round (dockerd's messages).
public enum ContainerTarExtractor {
    public struct Limits: Sendable {
        public var maxBytes: Int64
        public var maxEntries: Int
        /// Where `maxBytes` comes from, for the refusal's message.
        public var source: String
        public init(maxBytes: Int64, maxEntries: Int = 1_000_000, source: String) {
            self.maxBytes = maxBytes
            self.maxEntries = maxEntries
            self.source = source
        }

        /// The free space of the filesystem of `fd` less a reserve (a twentieth of it, at
        /// most 1 GiB), as the image extraction budget keeps.
        public static func freeSpace(of fd: Int32, maxEntries: Int = 1_000_000) -> Limits {
            var s = statvfs()
            guard fstatvfs(fd, &s) == 0 else { return Limits(maxBytes: Int64.max, maxEntries: maxEntries, source: "free space (unknown)") }
            let block = Int64(s.f_frsize)
            let (free, o1) = Int64(clamping: s.f_bavail).multipliedReportingOverflow(by: block)
            let (total, o2) = Int64(clamping: s.f_blocks).multipliedReportingOverflow(by: block)
            if o1 || o2 { return Limits(maxBytes: Int64.max, maxEntries: maxEntries, source: "free space") }
            return Limits(maxBytes: max(0, free - min(total / 20, 1 << 30)), maxEntries: maxEntries,
                          source: "the free space of the destination's filesystem less a reserve")
        }
    }

    public struct Options: Sendable {
        public var noOverwriteDirNonDir: Bool
        /// Owner of everything made (`copyUIDGID` with a container user); nil: the archive's.
        public var owner: (uid: uid_t, gid: gid_t)?
        public var limits: Limits
        /// Where the destination is in the container, and paths no entry may be at or below
        /// (a stopped container's mount points: what is written there would be hidden by the
        /// mount when it starts).
        public var destinationPath: String
        public var unreachable: [String]
        /// The CLI's side (`cryo cp CONTAINER:PATH LOCAL`): the first name `from` of every
        /// entry becomes `to` (docker's RebaseArchiveEntries; "/" stands for the root's
        /// entries "/", "/bin"…), and device nodes are skipped instead of refused.
        public var rebase: (from: String, to: String)?
        public var skipDevices: Bool
        public init(noOverwriteDirNonDir: Bool, owner: (uid: uid_t, gid: gid_t)? = nil, limits: Limits,
                    destinationPath: String = "/", unreachable: [String] = [],
                    rebase: (from: String, to: String)? = nil, skipDevices: Bool = false) {
            self.noOverwriteDirNonDir = noOverwriteDirNonDir
            self.owner = owner
            self.limits = limits
            self.destinationPath = destinationPath
            self.unreachable = unreachable
            self.rebase = rebase
            self.skipDevices = skipDevices
        }

        /// `name` with `rebase` applied.
        public func rebased(_ name: String) -> String {
            guard let r = rebase else { return name }
            if r.from == "/" { return name.hasPrefix("/") ? r.to + name : name }
            if name == r.from || name.hasPrefix(r.from + "/") { return r.to + name.dropFirst(r.from.count) }
            return name
        }
    }

    /// Deepest nesting of an entry's name.
    public static let maxDepth = 256

    // MARK: - checks

    /// "./a/b/" → ["a", "b"]; the root itself ("./") → []. Refuses absolute names and "..".
    public static func components(_ raw: String, what: String = "path") throws -> [String] {
        if raw.hasPrefix("/") {
            throw ArchiveError("archive entry \"\(raw)\": refused: its \(what) is absolute")
        }
        let parts = raw.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if parts.contains("..") {
            throw ArchiveError("archive entry \"\(raw)\": refused: its \(what) has a \"..\" component")
        }
        let out = parts.filter { $0 != "." }
        if out.count > maxDepth {
            throw ArchiveError("archive entry \"\(raw)\": refused: nested more than \(maxDepth) directories deep")
        }
        return out
    }

    /// Reads every header of the tar at `tarPath` and refuses it (naming the entry) if any
    /// entry breaks the rules above; nothing is written.
    public static func check(_ tarPath: String, limits: Limits, destinationPath: String = "/", unreachable: [String] = []) throws {
        try check(tarPath, options: Options(noOverwriteDirNonDir: true, limits: limits, destinationPath: destinationPath, unreachable: unreachable))
    }

    static func check(_ tarPath: String, options: Options) throws {
        let limits = options.limits, unreachable = options.unreachable, destinationPath = options.destinationPath
        let a = try openReader(tarPath)
        defer { archive_read_free(a) }
        var entries = 0
        var bytes: Int64 = 0
        try forEachEntry(a, tarPath) { e, raw in
            let name = options.rebased(raw)
            entries += 1
            if entries > limits.maxEntries {
                throw ArchiveError("the archive has more than \(limits.maxEntries) entries (the limit for a copy into a container): refused")
            }
            let parts = try components(name)
            if !unreachable.isEmpty {
                let path = ContainerCopyPath.clean(destinationPath + "/" + parts.joined(separator: "/"))
                if let m = unreachable.first(where: { ContainerCopyPath.isAtOrBelow(path, $0) }) {
                    throw ArchiveError("archive entry \"\(name)\": refused: \(path) is on \(m), which the container has mounted (a volume, bind mount or tmpfs) only while it runs: start it to copy there", code: .conflict)
                }
            }
            let (sum, overflow) = bytes.addingReportingOverflow(max(0, archive_entry_size(e)) + 512)
            bytes = overflow ? Int64.max : sum
            if bytes > limits.maxBytes {
                throw ArchiveError("the archive expands to more than \(limits.maxBytes) bytes (the limit: \(limits.source)), at entry \"\(name)\": refused")
            }
            if let hl = archive_entry_hardlink(e) {
                guard let target = String(validatingCString: hl).map(options.rebased) else {
                    throw ArchiveError("archive entry \"\(name)\": refused: its hard-link target is not valid UTF-8")
                }
                if try components(target, what: "hard-link target").isEmpty {
                    throw ArchiveError("archive entry \"\(name)\": refused: a hard link to the destination directory itself")
                }
                return
            }
            switch archive_entry_filetype(e) {
            case S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO: break
            case S_IFCHR, S_IFBLK:
                if options.skipDevices { return }
                throw ArchiveError("archive entry \"\(name)\": refused: it is a device node (cryo does not make device nodes in a container from a copy)")
            default:
                throw ArchiveError("archive entry \"\(name)\": refused: not a file, directory, symlink, hard link or fifo")
            }
        }
    }

    // MARK: - extraction

    /// Checks (`check`), then unpacks the tar at `tarPath` into the directory `destFD` (an
    /// `O_RDONLY | O_DIRECTORY` descriptor). `display` names the destination in errors.
    public static func extract(_ tarPath: String, into destFD: Int32, display: String, options: Options) throws {
        OffActorCheck.check("extract", tarPath)
        try check(tarPath, options: options)
        let a = try openReader(tarPath)
        defer { archive_read_free(a) }
        var run = Run(dest: destFD, display: display, options: options)
        try forEachEntry(a, tarPath) { e, name in try run.entry(a, e, options.rebased(name)) }
        run.applyDirectoryTimes()
    }

    struct Run {
        let dest: Int32
        let display: String
        let options: Options
        var written: Int64 = 0
        /// Directories' times, set at the end (entries written into them change them).
        var directoryTimes: [([String], timespec, timespec)] = []

        init(dest: Int32, display: String, options: Options) {
            self.dest = dest
            self.display = display
            self.options = options
        }

        func shown(_ parts: [String]) -> String {
            let d = display.hasSuffix("/") ? display : display + "/"
            return d + parts.joined(separator: "/")
        }

        /// Opens the directory `parts` below the destination without following links, making
        /// missing directories when `create`.
        func openDirectory(_ parts: [String], create: Bool, entry: String) throws -> Int32 {
            var fd = dup(dest)
            guard fd >= 0 else { throw ArchiveError.own("dup: \(String(cString: strerror(errno)))") }
            var walked: [String] = []
            for part in parts {
                walked.append(part)
                var next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if next < 0 && errno == ENOENT && create {
                    if mkdirat(fd, part, 0o755) != 0 && errno != EEXIST {
                        let e = errno
                        close(fd)
                        throw failure("making the directory \(shown(walked)) for entry \"\(entry)\"", e)
                    }
                    next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    if next >= 0 { _ = fchmod(next, 0o755) }
                }
                let e = errno
                close(fd)
                if next < 0 {
                    if e == ELOOP || e == ENOTDIR {
                        throw ArchiveError("archive entry \"\(entry)\": refused: \(shown(walked)) in the container is a symbolic link or not a directory (a copy never writes through a link)")
                    }
                    throw failure("opening \(shown(walked)) for entry \"\(entry)\"", e)
                }
                fd = next
            }
            return fd
        }

        func failure(_ what: String, _ e: Int32) -> ArchiveError {
            let text = "\(what): \(String(cString: strerror(e)))"
            // The container's side (a read-only mount, a full volume) or a conflict there is
            // the request's problem; anything else is cryod's.
            switch e {
            case EROFS: return ArchiveError("\(text) (the destination is read-only)", code: .invalidArgument)
            case ENOSPC, EDQUOT: return ArchiveError("\(text) (no space left at the destination)", code: .invalidArgument)
            case EEXIST, ENOTEMPTY, EISDIR, ENOTDIR, EXDEV, EMLINK, ENAMETOOLONG, EPERM, EACCES:
                return ArchiveError(text, code: .invalidArgument)
            default: return ArchiveError.own(text)
            }
        }

        mutating func entry(_ a: OpaquePointer, _ e: OpaquePointer, _ name: String) throws {
            let parts = try ContainerTarExtractor.components(name)
            guard let last = parts.last else { return }   // "./": the destination itself is left as it is
            let parent = try openDirectory(Array(parts.dropLast()), create: true, entry: name)
            defer { close(parent) }
            let hardlink = archive_entry_hardlink(e).flatMap { String(validatingCString: $0) }.map(options.rebased)
            let type = hardlink == nil ? archive_entry_filetype(e) : S_IFREG
            if hardlink == nil && (type == S_IFCHR || type == S_IFBLK) && options.skipDevices { return }
            let isDir = hardlink == nil && type == S_IFDIR

            var existing = stat()
            if fstatat(parent, last, &existing, AT_SYMLINK_NOFOLLOW) == 0 {
                let existingIsDir = existing.st_mode & S_IFMT == S_IFDIR
                if options.noOverwriteDirNonDir && existingIsDir && !isDir {
                    throw ArchiveError("cannot overwrite directory \"\(shown(parts))\" with non-directory \"\(name)\"", code: .invalidArgument)
                }
                if options.noOverwriteDirNonDir && !existingIsDir && isDir {
                    throw ArchiveError("cannot overwrite non-directory \"\(shown(parts))\" with directory \"\(name)\"", code: .invalidArgument)
                }
                if !(existingIsDir && isDir) {
                    if existingIsDir {
                        try removeTree(parent, last, shown(parts), depth: 0)
                    } else if unlinkat(parent, last, 0) != 0 && errno != ENOENT {
                        throw failure("replacing \(shown(parts))", errno)
                    }
                }
            }

            let uid = options.owner?.uid ?? uid_t(truncatingIfNeeded: archive_entry_uid(e))
            let gid = options.owner?.gid ?? gid_t(truncatingIfNeeded: archive_entry_gid(e))
            let perm = mode_t(archive_entry_perm(e)) & 0o7777
            let mtime = timespec(tv_sec: archive_entry_mtime(e), tv_nsec: archive_entry_mtime_nsec(e))
            let atime = archive_entry_atime_is_set(e) != 0 ? timespec(tv_sec: archive_entry_atime(e), tv_nsec: archive_entry_atime_nsec(e)) : mtime

            if let hardlink {
                let target = try ContainerTarExtractor.components(hardlink, what: "hard-link target")
                let tparent = try openDirectory(Array(target.dropLast()), create: false, entry: name)
                defer { close(tparent) }
                guard linkat(tparent, target.last!, parent, last, 0) == 0 else {
                    throw failure("linking \(shown(parts)) to \(shown(target))", errno)
                }
                return
            }
            switch type {
            case S_IFDIR:
                if mkdirat(parent, last, 0o700) != 0 && errno != EEXIST { throw failure("making \(shown(parts))", errno) }
                let fd = openat(parent, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard fd >= 0 else {
                    let err = errno
                    if err == ELOOP || err == ENOTDIR {
                        throw ArchiveError("archive entry \"\(name)\": refused: \(shown(parts)) changed in the container meanwhile (it is not a directory)")
                    }
                    throw failure("opening \(shown(parts))", err)
                }
                defer { close(fd) }
                try setOwnerAndMode(fd, uid, gid, perm, shown(parts))
                directoryTimes.append((parts, atime, mtime))
            case S_IFREG:
                let fd = openat(parent, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
                guard fd >= 0 else { throw failure("creating \(shown(parts))", errno) }
                defer { close(fd) }
                try copyData(a, to: fd, size: archive_entry_size(e), shown(parts))
                try setOwnerAndMode(fd, uid, gid, perm, shown(parts))
                var times = [atime, mtime]
                _ = futimens(fd, &times)
            case S_IFLNK:
                let target = archive_entry_symlink(e).map { String(cString: $0) } ?? ""
                guard symlinkat(target, parent, last) == 0 else { throw failure("making the symlink \(shown(parts))", errno) }
                guard fchownat(parent, last, uid, gid, AT_SYMLINK_NOFOLLOW) == 0 else { throw failure("chown \(shown(parts))", errno) }
                var times = [atime, mtime]
                _ = utimensat(parent, last, &times, AT_SYMLINK_NOFOLLOW)
            case S_IFIFO:
                guard mkfifoat(parent, last, 0o600) == 0 else { throw failure("making the fifo \(shown(parts))", errno) }
                // Its metadata through an O_PATH descriptor of what was made, never by name.
                let fd = openat(parent, last, FS.openPathOnly | O_NOFOLLOW | O_CLOEXEC)
                guard fd >= 0 else { throw failure("opening \(shown(parts))", errno) }
                defer { close(fd) }
                var st = stat()
                guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFIFO else {
                    throw ArchiveError("archive entry \"\(name)\": refused: \(shown(parts)) changed in the container meanwhile")
                }
                let proc = "/proc/self/fd/\(fd)"   // the magic link reaches exactly that inode
                guard chown(proc, uid, gid) == 0 else { throw failure("chown \(shown(parts))", errno) }
                guard chmod(proc, perm) == 0 else { throw failure("chmod \(shown(parts))", errno) }
                var times = [atime, mtime]
                _ = utimensat(AT_FDCWD, proc, &times, 0)
            default:
                throw ArchiveError("archive entry \"\(name)\": refused: unsupported type")
            }
        }

        func setOwnerAndMode(_ fd: Int32, _ uid: uid_t, _ gid: gid_t, _ perm: mode_t, _ shown: String) throws {
            // chown first: it clears set-user-ID bits that chmod then sets.
            guard fchown(fd, uid, gid) == 0 else { throw failure("chown \(shown)", errno) }
            guard fchmod(fd, perm) == 0 else { throw failure("chmod \(shown)", errno) }
        }

        mutating func copyData(_ a: OpaquePointer, to fd: Int32, size: Int64, _ shown: String) throws {
            var buf: UnsafeRawPointer?
            var n = 0
            var offset: la_int64_t = 0
            while true {
                let r = archive_read_data_block(a, &buf, &n, &offset)
                if r == ARCHIVE_EOF { break }
                if r < ARCHIVE_WARN { throw ArchiveError("reading the data of \(shown) from the archive: \(archiveText(a))") }
                written += Int64(n)
                if written > options.limits.maxBytes {
                    throw ArchiveError("the archive expands to more than \(options.limits.maxBytes) bytes (the limit: \(options.limits.source)): refused")
                }
                var done = 0
                while done < n {
                    let w = pwrite(fd, buf! + done, n - done, off_t(offset) + off_t(done))
                    if w < 0 && errno == EINTR { continue }
                    guard w > 0 else { throw failure("writing \(shown)", errno) }
                    done += w
                }
            }
            // A sparse file's hole at the end.
            guard ftruncate(fd, off_t(max(0, size))) == 0 else { throw failure("writing \(shown)", errno) }
        }

        /// Removes the directory `name` in `parentFD` and everything in it, never following a link.
        func removeTree(_ parentFD: Int32, _ name: String, _ shown: String, depth: Int) throws {
            guard depth < ContainerTarExtractor.maxDepth * 4 else { throw ArchiveError("removing \(shown): nested too deep", code: .invalidArgument) }
            let fd = openat(parentFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else {
                if errno == ENOENT { return }
                if errno == ELOOP || errno == ENOTDIR {
                    if unlinkat(parentFD, name, 0) != 0 && errno != ENOENT { throw failure("removing \(shown)", errno) }
                    return
                }
                throw failure("opening \(shown)", errno)
            }
            defer { close(fd) }
            for child in try ContainerTreeTar.Writer.list(fd, shown) {
                var st = stat()
                guard fstatat(fd, child, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                if st.st_mode & S_IFMT == S_IFDIR {
                    try removeTree(fd, child, shown + "/" + child, depth: depth + 1)
                } else if unlinkat(fd, child, 0) != 0 && errno != ENOENT {
                    throw failure("removing \(shown)/\(child)", errno)
                }
            }
            if unlinkat(parentFD, name, AT_REMOVEDIR) != 0 && errno != ENOENT { throw failure("removing \(shown)", errno) }
        }

        /// Sets the recorded directory times, deepest first (best effort: a directory the
        /// container removed meanwhile is skipped).
        func applyDirectoryTimes() {
            for (parts, atime, mtime) in directoryTimes.reversed() {
                guard let fd = try? openDirectory(parts, create: false, entry: parts.joined(separator: "/")) else { continue }
                var times = [atime, mtime]
                _ = futimens(fd, &times)
                close(fd)
            }
        }
    }

    // MARK: - libarchive plumbing

    static func openReader(_ path: String) throws -> OpaquePointer {
        guard let a = archive_read_new() else { throw ArchiveError.own("archive_read_new failed") }
        archive_read_support_filter_all(a)
        archive_read_support_format_tar(a)
        if archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK {
            let text = archiveText(a)
            archive_read_free(a)
            throw ArchiveError("the request body is not a tar archive: \(text)")
        }
        return a
    }

    static func forEachEntry(_ a: OpaquePointer, _ path: String, _ body: (OpaquePointer, String) throws -> Void) throws {
        var entry: OpaquePointer?
        while true {
            let r = archive_read_next_header(a, &entry)
            if r == ARCHIVE_EOF { return }
            if r < ARCHIVE_WARN { throw ArchiveError("reading the archive: \(archiveText(a))") }
            guard let entry else { return }
            guard let c = archive_entry_pathname(entry), let name = String(validatingCString: c) else {
                throw ArchiveError("refusing an archive entry whose name is not valid UTF-8")
            }
            try body(entry, name)
        }
    }

    static func archiveText(_ a: OpaquePointer) -> String {
        archive_error_string(a).map { String(cString: $0) } ?? "unknown libarchive error"
    }
}
