import Glibc
import CShim

/// Small, synchronous file helpers over raw syscalls (no Foundation in the init path).
public enum FS {
    public static func exists(_ path: String) -> Bool {
        OffActorCheck.check("access", path)
        return access(path, F_OK) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        OffActorCheck.check("stat", path)
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// True when `path` is a mount point: its device differs from its parent's (or it is "/").
    public static func isMountPoint(_ path: String) -> Bool {
        OffActorCheck.check("stat", path)
        var a = stat(), b = stat()
        guard stat(path, &a) == 0, stat(parent(path), &b) == 0 else { return false }
        return a.st_dev != b.st_dev || a.st_ino == b.st_ino
    }

    /// statfs(2)'s f_type (e.g. 0x01021994 for tmpfs), nil if the path cannot be reached.
    public static func fileSystemType(_ path: String) -> Int? {
        OffActorCheck.check("statfs", path)
        let t = cryo_fs_type(path)
        return t < 0 ? nil : t
    }

    public static func lstatMode(_ path: String) -> mode_t? {
        OffActorCheck.check("lstat", path)
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_mode & S_IFMT : nil
    }

    public static func statInode(_ path: String) throws -> (dev: UInt64, ino: UInt64) {
        OffActorCheck.check("stat", path)
        var st = stat()
        try sys(stat(path, &st), "stat", path)
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    /// Reads a whole file as bytes.
    public static func readBytes(_ path: String) throws -> [UInt8] {
        OffActorCheck.check("read", path)
        let fd = try sys(open(path, O_RDONLY | O_CLOEXEC), "open", path)
        defer { close(fd) }
        return try readAll(fd: fd, what: path)
    }

    public static func readAll(fd: Int32, what: String) throws -> [UInt8] {
        OffActorCheck.check("read", what)
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { p in retryingEINTR { read(fd, p.baseAddress, p.count) } }
            if n < 0 { throw SyscallError("read", what) }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    public static func readString(_ path: String) throws -> String {
        String(decoding: try readBytes(path), as: UTF8.self)
    }

    /// Writes a file in place (for /proc, /sys and cgroup knobs).
    public static func write(_ path: String, _ string: String, flags: Int32 = O_WRONLY | O_TRUNC) throws {
        OffActorCheck.check("write", path)
        let fd = try sys(open(path, flags | O_CLOEXEC, 0o644), "open", path)
        defer { close(fd) }
        try writeAll(fd: fd, Array(string.utf8), what: path)
    }

    public static func writeAll(fd: Int32, _ bytes: [UInt8], what: String) throws {
        OffActorCheck.check("write", what)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { p in
                retryingEINTR { Glibc.write(fd, p.baseAddress! + off, p.count - off) }
            }
            if n < 0 { throw SyscallError("write", what) }
            off += n
        }
    }

    /// Atomic replace: temp file, then rename, so readers never see half a file.
    /// `durable` adds fsync of the file and its directory (state that must survive
    /// a power loss; not needed for runtime state on /run, which a reboot clears).
    public static func atomicWrite(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600, durable: Bool = true) throws {
        OffActorCheck.check("atomicWrite", path)
        let tmp = path + ".tmp.\(getpid())"
        let fd = try sys(open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode), "open", tmp)
        do {
            try writeAll(fd: fd, bytes, what: tmp)
            if durable { try sys(fsync(fd), "fsync", tmp) }
            close(fd)
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        try sys(rename(tmp, path), "rename", "\(tmp) -> \(path)")
        guard durable else { return }
        let dir = parent(path)
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    public static func mkdirAll(_ path: String, mode: mode_t = 0o755) throws {
        OffActorCheck.check("mkdir", path)
        if path.isEmpty || path == "/" { return }
        if isDirectory(path) { return }
        try mkdirAll(parent(path), mode: mode)
        if mkdir(path, mode) != 0 && errno != EEXIST {
            throw SyscallError("mkdir", path)
        }
    }

    /// Creates an empty file if nothing exists there (a mountpoint for a file bind mount).
    public static func touch(_ path: String, mode: mode_t = 0o644) throws {
        OffActorCheck.check("touch", path)
        if lstatMode(path) != nil { return }
        try mkdirAll(parent(path))
        let fd = try sys(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, mode), "create", path)
        close(fd)
    }

    public static func listDirectory(_ path: String) throws -> [String] {
        OffActorCheck.check("opendir", path)
        guard let d = opendir(path) else { throw SyscallError("opendir", path) }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) { p in
                p.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Removes a file or a directory tree (does not cross mount points it cannot unlink).
    public static func removeAll(_ path: String) throws {
        OffActorCheck.check("removeAll", path)
        guard let mode = lstatMode(path) else { return }
        if mode == S_IFDIR {
            let names: [String]
            do { names = try listDirectory(path) } catch let e as SyscallError where e.errno == ENOENT {
                return   // removed meanwhile by someone else (a monitor cleaning up the same state)
            }
            for name in names { try removeAll(path + "/" + name) }
            if rmdir(path) != 0 && errno != ENOENT { throw SyscallError("rmdir", path) }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw SyscallError("unlink", path)
        }
    }

    public static func readlink(_ path: String) -> String? {
        OffActorCheck.check("readlink", path)
        var buf = [CChar](repeating: 0, count: 4096)
        let n = Glibc.readlink(path, &buf, buf.count - 1)
        if n < 0 { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func parent(_ path: String) -> String {
        guard let i = path.lastIndex(of: "/") else { return "." }
        if i == path.startIndex { return "/" }
        return String(path[..<i])
    }

    public static func join(_ a: String, _ b: String) -> String {
        if b.hasPrefix("/") { return a.hasSuffix("/") ? a + b.dropFirst() : a + b }
        return a.hasSuffix("/") ? a + b : a + "/" + b
    }

    public static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return clean(path) }
        var buf = [CChar](repeating: 0, count: 4096)
        guard let cwd = getcwd(&buf, buf.count) else { return path }
        return clean(join(String(cString: cwd), path))
    }

    /// Lexical clean: removes ".", "..", duplicate slashes. Never goes above "/".
    public static func clean(_ path: String) -> String {
        var parts: [Substring] = []
        for p in path.split(separator: "/", omittingEmptySubsequences: true) {
            if p == "." { continue }
            if p == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(p)
        }
        let joined = parts.joined(separator: "/")
        return path.hasPrefix("/") ? "/" + joined : (joined.isEmpty ? "." : joined)
    }
}
