import CArchive
import Crypto
import FoundationEssentials
import Glibc

/// What one import may unpack: bytes of all members together (each entry also costs a tar
/// block, so a flood of empty entries counts) and the number of entries. A few kilobytes of
/// zstd can expand to terabytes: the reader stops at the limit, not after.
public struct ArchiveLimits: Sendable {
    public var maxBytes: Int64
    public var maxEntries: Int
    public init(maxBytes: Int64, maxEntries: Int = 200_000) {
        self.maxBytes = maxBytes
        self.maxEntries = maxEntries
    }
}

/// An archive unpacked into a staging directory and checked.
public struct ExtractedCheckpointArchive: Sendable {
    public let root: String
    /// The archive carried cryo's digest list and every member matched it.
    public let verified: Bool
    public let files: Set<String>

    public func has(_ member: String) -> Bool { files.contains(member) }
    public func path(_ member: String) -> String { root + "/" + member }
}

/// Reads a checkpoint archive (plain, gzip, zstd, xz or bzip2, found by its magic) into an
/// empty staging directory, refusing — before anything else is made — an archive that is
/// truncated or damaged, that holds anything but files and directories (symlinks, hardlinks,
/// devices: refused, so no member can lead outside the staging directory), a member whose
/// name is absolute, has a `..` component or appears twice, one that unpacks past the
/// limits, or whose members differ from its digest list. An archive without cryo's digest
/// list (podman's) is accepted only if nothing of cryo's is in it either: a cryo archive that
/// lost its list (the last member) was truncated.
public enum CheckpointArchiveReader {
    public static func extract(_ archive: String, into staging: String, limits: ArchiveLimits) throws -> ExtractedCheckpointArchive {
        guard let a = archive_read_new() else { throw ArchiveError.own("archive_read_new failed") }
        defer { archive_read_free(a) }
        archive_read_support_filter_all(a)
        archive_read_support_format_tar(a)
        guard archive_read_open_filename(a, archive, 1 << 16) == ARCHIVE_OK else {
            throw ArchiveError("\(archive) is not a readable tar archive, or it is truncated or damaged: \(errorText(a))")
        }
        var found: [String: (size: Int64, sha256: String)] = [:]
        var dirs: Set<String> = []
        var spent: Int64 = 0
        var entries = 0
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            var e: OpaquePointer?
            let r = archive_read_next_header(a, &e)
            if r == ARCHIVE_EOF { break }
            guard r >= ARCHIVE_WARN, let e else {
                throw ArchiveError("\(archive) is truncated or damaged after \(entries) members: \(errorText(a))")
            }
            entries += 1
            guard entries <= limits.maxEntries else {
                throw ArchiveError("\(archive) has more than \(limits.maxEntries) members (the limit): refused")
            }
            guard let rawC = archive_entry_pathname(e), let raw = String(validatingCString: rawC) else {
                throw ArchiveError("\(archive): a member's name is not valid UTF-8: refused")
            }
            let name = try memberName(raw)
            let type = archive_entry_filetype(e)
            if archive_entry_hardlink(e) != nil {
                throw ArchiveError("member \(raw) is a hard link: refused (a checkpoint archive holds only files and directories)")
            }
            spent = try spend(spent, 512, limits, raw)
            if name.isEmpty { continue }   // "./"
            switch type {
            case S_IFDIR:
                if found[name] != nil { throw ArchiveError("member \(raw) is both a file and a directory: refused") }
                try makeDirectories(staging, name)
                dirs.insert(name)
            case S_IFREG:
                if found[name] != nil || dirs.contains(name) { throw ArchiveError("member \(raw) appears twice: refused") }
                let size = archive_entry_size(e)
                guard size >= 0 else { throw ArchiveError("member \(raw) has a negative size: refused") }
                spent = try spend(spent, size, limits, raw)
                let parent = name.split(separator: "/").dropLast().joined(separator: "/")
                if !parent.isEmpty { try makeDirectories(staging, parent) }
                let target = staging + "/" + name
                let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
                guard fd >= 0 else { throw ArchiveError.own("member \(raw): cannot create \(target): \(String(cString: strerror(errno)))") }
                var h = SHA256()
                var got: Int64 = 0
                do {
                    defer { close(fd) }
                    while true {
                        let n = buf.withUnsafeMutableBytes { archive_read_data(a, $0.baseAddress, $0.count) }
                        if n < 0 { throw ArchiveError("\(archive) is truncated or damaged in member \(raw): \(errorText(a))") }
                        if n == 0 { break }
                        got += Int64(n)
                        if got > size { throw ArchiveError("member \(raw) holds more than its recorded \(size) bytes: refused") }
                        buf.withUnsafeBytes { h.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                        var off = 0
                        while off < n {
                            let w = buf.withUnsafeBytes { write(fd, $0.baseAddress! + off, n - off) }
                            if w < 0 && errno == EINTR { continue }
                            guard w > 0 else { throw ArchiveError.own("member \(raw): writing \(target): \(String(cString: strerror(errno)))") }
                            off += w
                        }
                    }
                }
                guard got == size else {
                    throw ArchiveError("\(archive) is truncated: member \(raw) has \(got) of its \(size) bytes")
                }
                found[name] = (size, CheckpointArchiveWriter.hex(h.finalize()))
            default:
                throw ArchiveError("member \(raw) is \(typeName(type)): refused (a checkpoint archive holds only files and directories)")
            }
        }
        return try check(archive, staging: staging, found: found)
    }

    /// The digest list against what was unpacked, and the members every archive needs.
    static func check(_ archive: String, staging: String, found: [String: (size: Int64, sha256: String)]) throws -> ExtractedCheckpointArchive {
        var members = found
        var verified = false
        if members.removeValue(forKey: CheckpointArchiveLayout.digests) != nil {
            let bytes = try readAll(staging + "/" + CheckpointArchiveLayout.digests)
            let digests: ArchiveDigests
            do { digests = try JSONDecoder().decode(ArchiveDigests.self, from: Data(bytes)) } catch {
                throw ArchiveError("\(archive): \(CheckpointArchiveLayout.digests) cannot be read: \(error)")
            }
            if let problem = digests.mismatch(members) { throw ArchiveError("\(archive): \(problem)") }
            verified = true
        } else if members[CheckpointArchiveLayout.cryoContainer] != nil {
            throw ArchiveError("\(archive) is a cryo archive without its digest list (its last member): it is truncated")
        }
        for needed in [CheckpointArchiveLayout.configDump, CheckpointArchiveLayout.specDump, CheckpointArchiveLayout.checkpointDirectory + "/inventory.img"]
        where members[needed] == nil {
            throw ArchiveError("\(archive) is not a checkpoint archive: it has no \(needed)")
        }
        return ExtractedCheckpointArchive(root: staging, verified: verified, files: Set(members.keys))
    }

    /// "./checkpoint/x.img" → "checkpoint/x.img"; refuses what could leave the staging directory.
    public static func memberName(_ raw: String) throws -> String {
        if raw.hasPrefix("/") { throw ArchiveError("member \(raw) has an absolute name: refused") }
        if raw.utf8.count > 4096 { throw ArchiveError("member \(raw.prefix(64))… has a name longer than 4096 bytes: refused") }
        let parts = raw.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        if parts.contains("..") { throw ArchiveError("member \(raw) has a \"..\" component (a path escape): refused") }
        return parts.joined(separator: "/")
    }

    static func spend(_ spent: Int64, _ bytes: Int64, _ limits: ArchiveLimits, _ member: String) throws -> Int64 {
        let (sum, overflow) = spent.addingReportingOverflow(bytes)
        if overflow || sum > limits.maxBytes {
            throw ArchiveError("the archive unpacks to more than \(limits.maxBytes) bytes (the limit), at member \(member): refused (a decompression bomb, or too little space)")
        }
        return sum
    }

    static func makeDirectories(_ root: String, _ rel: String) throws {
        var current = root
        for part in rel.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o700) != 0 && errno != EEXIST {
                throw ArchiveError.own("cannot create \(current): \(String(cString: strerror(errno)))")
            }
            var st = stat()
            guard lstat(current, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
                throw ArchiveError("member \(rel): \(current) is not a directory: refused")
            }
        }
    }

    static func readAll(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw ArchiveError.own("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += buf[0..<n]
            if out.count > 64 << 20 { throw ArchiveError("\(path) is larger than 64 MiB: refused") }
        }
        return out
    }

    static func typeName(_ t: mode_t) -> String {
        switch t {
        case S_IFLNK: return "a symbolic link"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFIFO: return "a fifo"
        case S_IFSOCK: return "a socket"
        default: return "of an unknown type"
        }
    }

    static func errorText(_ a: OpaquePointer) -> String {
        archive_error_string(a).map { String(cString: $0) } ?? "unknown libarchive error"
    }
}
