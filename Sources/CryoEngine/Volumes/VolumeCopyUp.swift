import CryoLinux
import Glibc

/// Docker's copy-up: an empty volume mounted over a directory of the image starts as a copy
/// of that directory (owner, mode, times, symlinks as symlinks; not extended attributes:
/// Glibc's module does not export the xattr calls, CShim would need wrappers).
/// Nothing is followed through a symlink: the source is resolved inside the rootfs, and the
/// walk uses lstat and O_NOFOLLOW.
enum VolumeCopyUp {
    /// Copies `rootfs`'s `destination` into `data` when `data` is empty and the image has a
    /// directory there. Called on the pool before the container's first mount of the volume.
    static func run(rootfs: String, destination: String, into data: String) throws {
        guard ((try? FS.listDirectory(data)) ?? ["?"]).isEmpty else { return }
        let source = try FS.secureJoin(root: rootfs, destination)
        guard FS.lstatMode(source) == S_IFDIR else { return }
        do { try copyTree(source, data, isRoot: true) } catch {
            throw EngineError.internalError("volume copy-up of \(destination) into \(data): \(error)")
        }
    }

    static func copyTree(_ from: String, _ to: String, isRoot: Bool = false) throws {
        var st = stat()
        guard lstat(from, &st) == 0 else { throw SyscallError("lstat", from) }
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            if !isRoot, mkdir(to, 0o700) != 0 { throw SyscallError("mkdir", to) }
            for n in try FS.listDirectory(from) { try copyTree(from + "/" + n, to + "/" + n) }
        case S_IFREG:
            try copyFile(from, to)
        case S_IFLNK:
            guard let target = FS.readlink(from) else { throw SyscallError("readlink", from) }
            if symlink(target, to) != 0 { throw SyscallError("symlink", to) }
        default:
            // Devices, fifos, sockets: made again (mknod keeps the type and device number).
            if mknod(to, st.st_mode, st.st_rdev) != 0 { throw SyscallError("mknod", to) }
        }
        if lchown(to, st.st_uid, st.st_gid) != 0 { throw SyscallError("lchown", to) }
        if st.st_mode & S_IFMT != S_IFLNK, chmod(to, st.st_mode & 0o7777) != 0 { throw SyscallError("chmod", to) }
        var times = [st.st_atim, st.st_mtim]
        _ = utimensat(AT_FDCWD, to, &times, AT_SYMLINK_NOFOLLOW)
    }

    static func copyFile(_ from: String, _ to: String) throws {
        let src = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard src >= 0 else { throw SyscallError("open", from) }
        defer { close(src) }
        let dst = open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard dst >= 0 else { throw SyscallError("open", to) }
        defer { close(dst) }
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = read(src, &buf, buf.count)
            if n < 0 { if errno == EINTR { continue }; throw SyscallError("read", from) }
            if n == 0 { break }
            try FS.writeAll(fd: dst, Array(buf[0..<n]), what: to)
        }
    }
}
