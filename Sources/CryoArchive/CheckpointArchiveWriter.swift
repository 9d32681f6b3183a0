import CArchive
import Crypto
import FoundationEssentials
import Glibc

/// Writes a checkpoint archive: one tar, compressed as a whole (zstd, gzip or none), every
/// member owned by root with mode 0600 (directories 0700) — the images hold everything that
/// was in the container's memory. Each file's sha256 is computed as it is written and
/// recorded in `cryo-digests.json`, the last member. The file itself is created 0600 and
/// never replaces an existing one.
public final class CheckpointArchiveWriter {
    let path: String
    let fd: Int32
    let a: OpaquePointer
    var recorded: [ArchiveDigests.Member] = []
    var finished = false
    let now = time(nil)

    /// Whether `finish` adds `cryo-digests.json` (checkpoint archives); image archives
    /// (`docker save`) carry their digests in their blob names instead.
    let recordsDigests: Bool

    public init(path: String, compression: ArchiveCompression, recordsDigests: Bool = true) throws {
        self.path = path
        self.recordsDigests = recordsDigests
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ArchiveError.own("cannot create \(path): \(String(cString: strerror(errno)))") }
        fchmod(fd, 0o600)   // whatever the umask
        guard let a = archive_write_new() else {
            close(fd)
            throw ArchiveError.own("archive_write_new failed")
        }
        self.fd = fd
        self.a = a
        archive_write_set_format_pax_restricted(a)
        let r: Int32
        switch compression {
        case .zstd: r = archive_write_add_filter_zstd(a)
        case .gzip: r = archive_write_add_filter_gzip(a)
        case .none: r = archive_write_add_filter_none(a)
        }
        guard r == ARCHIVE_OK, archive_write_open_fd(a, fd) == ARCHIVE_OK else {
            let e = Self.error(a, "opening \(path) for writing (\(compression.rawValue))")
            archive_write_free(a)
            close(fd)
            throw e
        }
    }

    deinit {
        if !finished {
            archive_write_free(a)
            close(fd)
        }
    }

    /// A directory entry (checkpointctl wants one for `checkpoint/`).
    public func addDirectory(_ name: String) throws {
        let e = entry(name, type: S_IFDIR, perm: 0o700, size: 0)
        defer { archive_entry_free(e) }
        guard archive_write_header(a, e) == ARCHIVE_OK else { throw Self.error(a, "writing \(name)/ into \(path)") }
    }

    public func addBytes(_ name: String, _ bytes: [UInt8]) throws {
        let e = entry(name, type: S_IFREG, perm: 0o600, size: Int64(bytes.count))
        defer { archive_entry_free(e) }
        guard archive_write_header(a, e) == ARCHIVE_OK else { throw Self.error(a, "writing \(name) into \(path)") }
        var h = SHA256()
        h.update(data: bytes)
        if !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { archive_write_data(a, $0.baseAddress, $0.count) }
            guard n == bytes.count else { throw Self.error(a, "writing \(name) into \(path)") }
        }
        recorded.append(.init(path: name, size: Int64(bytes.count), sha256: Self.hex(h.finalize())))
    }

    /// The regular file `source`, streamed (its size as found when opened).
    public func addFile(_ name: String, from source: String) throws {
        let sfd = open(source, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard sfd >= 0 else { throw ArchiveError.own("cannot open \(source) for the archive: \(String(cString: strerror(errno)))") }
        defer { close(sfd) }
        var st = stat()
        guard fstat(sfd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw ArchiveError.own("\(source) is not a regular file: not archived")
        }
        let size = Int64(st.st_size)
        let e = entry(name, type: S_IFREG, perm: 0o600, size: size)
        defer { archive_entry_free(e) }
        guard archive_write_header(a, e) == ARCHIVE_OK else { throw Self.error(a, "writing \(name) into \(path)") }
        var h = SHA256()
        var left = size
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while left > 0 {
            let n = buf.withUnsafeMutableBytes { read(sfd, $0.baseAddress, min($0.count, Int(left))) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ArchiveError.own("reading \(source) for the archive: \(n == 0 ? "it shrank while being read" : String(cString: strerror(errno)))") }
            buf.withUnsafeBytes { h.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            let w = buf.withUnsafeBytes { archive_write_data(a, $0.baseAddress, n) }
            guard w == n else { throw Self.error(a, "writing \(name) into \(path)") }
            left -= Int64(n)
        }
        recorded.append(.init(path: name, size: size, sha256: Self.hex(h.finalize())))
    }

    /// Every regular file under `directory`, as `prefix/relative path` (subdirectories too).
    public func addTree(_ prefix: String, from directory: String, skip: Set<String> = []) throws {
        try addDirectory(prefix)
        guard let d = opendir(directory) else { throw ArchiveError.own("cannot read \(directory): \(String(cString: strerror(errno)))") }
        var names: [String] = []
        while let ent = readdir(d) {
            let n = withUnsafePointer(to: ent.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            if n != "." && n != ".." && !skip.contains(n) { names.append(n) }
        }
        closedir(d)
        for n in names.sorted() {
            var st = stat()
            guard lstat(directory + "/" + n, &st) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFREG: try addFile(prefix + "/" + n, from: directory + "/" + n)
            case S_IFDIR: try addTree(prefix + "/" + n, from: directory + "/" + n)
            default: throw ArchiveError.own("\(directory)/\(n) is neither a file nor a directory: a checkpoint directory holds only those")
            }
        }
    }

    /// Writes the digest list (unless `recordsDigests` is off) and closes the archive (fsynced).
    public func finish() throws {
        if recordsDigests {
            let json = try JSONEncoderForArchive.encode(ArchiveDigests(members: recorded))
            try addBytes(CheckpointArchiveLayout.digests, json)
            recorded.removeLast()
        }
        finished = true
        defer { archive_write_free(a); close(fd) }
        guard archive_write_close(a) == ARCHIVE_OK else { throw Self.error(a, "finishing \(path)") }
        guard fsync(fd) == 0 else { throw ArchiveError.own("fsync \(path): \(String(cString: strerror(errno)))") }
    }

    func entry(_ name: String, type: mode_t, perm: mode_t, size: Int64) -> OpaquePointer {
        let e = archive_entry_new()!
        archive_entry_copy_pathname(e, name)
        archive_entry_set_filetype(e, UInt32(type))
        archive_entry_set_perm(e, perm)
        archive_entry_set_size(e, size)
        archive_entry_set_uid(e, 0)
        archive_entry_set_gid(e, 0)
        archive_entry_set_mtime(e, now, 0)
        return e
    }

    static func error(_ a: OpaquePointer, _ what: String) -> ArchiveError {
        ArchiveError.own("\(what): \(archive_error_string(a).map { String(cString: $0) } ?? "libarchive error")")
    }

    static func hex<D: Sequence>(_ d: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in d { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Sorted keys and two-space indentation, like podman's dumps.
enum JSONEncoderForArchive {
    static func encode<T: Encodable>(_ v: T) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try e.encode(v))
    }
}
