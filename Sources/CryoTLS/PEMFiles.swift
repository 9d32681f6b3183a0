#if canImport(Glibc)
import Glibc
#endif

/// Writes and reads the small PEM files of a CA or an identity. Writes never follow a
/// symlink: the bytes go to a fresh file (O_EXCL|O_NOFOLLOW) beside the target, which is
/// then renamed over it, so a symlink planted at the target is replaced, not written through.
enum PEMFiles {
    /// Creates `dir` (and its parents) with mode 0700 where missing; an existing one is kept.
    static func makeDirectory(_ dir: String) throws {
        var st = stat()
        if stat(dir, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw TLSError("\(dir) exists and is not a directory") }
            return
        }
        let parent = parentDirectory(dir)
        if parent != dir, !parent.isEmpty { try makeDirectory(parent) }
        if mkdir(dir, 0o700) != 0 && errno != EEXIST {
            throw TLSError("cannot create directory \(dir): \(errnoText())")
        }
    }

    static func parentDirectory(_ path: String) -> String {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        guard let slash = p.lastIndex(of: "/") else { return "." }
        if slash == p.startIndex { return "/" }
        return String(p[..<slash])
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// Writes `bytes` to `path` with `mode`. Without `overwrite`, an existing file (or
    /// symlink) at `path` is an error.
    static func write(_ bytes: [UInt8], to path: String, mode: mode_t, overwrite: Bool) throws {
        if !overwrite && exists(path) {
            throw TLSError("\(path) already exists (use --force to replace it)")
        }
        var rng = SystemRandomNumberGenerator()
        let random = rng.next()
        let temp = parentDirectory(path) + "/." + baseName(path) + ".tmp-" + String(random, radix: 16)
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw TLSError("cannot create \(temp): \(errnoText())") }
        var ok = false
        defer {
            if !ok { unlink(temp) }
        }
        defer { close(fd) }
        // The umask may have narrowed the mode; set it exactly.
        guard fchmod(fd, mode) == 0 else { throw TLSError("chmod \(temp): \(errnoText())") }
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TLSError("write \(temp): \(errnoText())")
            }
            off += n
        }
        guard fsync(fd) == 0 else { throw TLSError("fsync \(temp): \(errnoText())") }
        guard rename(temp, path) == 0 else { throw TLSError("rename \(temp) to \(path): \(errnoText())") }
        ok = true
    }

    /// The whole file; errors name the file and say what is wrong with it.
    static func read(_ path: String, what: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            if e == ENOENT { throw TLSError("\(what) \(path) does not exist") }
            throw TLSError("cannot open \(what) \(path): \(errnoText(e))")
        }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TLSError("cannot read \(what) \(path): \(errnoText())")
            }
            if n == 0 { break }
            out += buf[0..<n]
            if out.count > 1 << 20 { throw TLSError("\(what) \(path) is larger than 1 MiB: not a PEM file") }
        }
        return out
    }

    static func baseName(_ path: String) -> String {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        guard let slash = p.lastIndex(of: "/") else { return p }
        return String(p[p.index(after: slash)...])
    }
}

func errnoText(_ e: Int32 = errno) -> String { String(cString: strerror(e)) }
