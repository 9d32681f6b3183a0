import Glibc

extension FS {
    /// Checks that `path` lies inside `root` and that no component of it below `root` is a
    /// symlink or anything but a directory, walking it with `openat(O_NOFOLLOW)` one
    /// component at a time (what `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` does).
    /// Missing components are created (mode `mode`) when `create` is set, else reported
    /// as ENOENT. `path` must be absolute and already cleaned (no `.` or `..`). Returns
    /// `path` itself, now known to be a real directory tree under `root`.
    ///
    /// Used for client-chosen directories such as a checkpoint's `--checkpoint-dir`: a
    /// lexical prefix check alone lets a symlink planted somewhere under `root` (by a
    /// container, in its own rootfs) carry writes and deletions outside it.
    @discardableResult
    public static func directoryBeneath(root: String, _ path: String, create: Bool, mode: mode_t = 0o700) throws -> String {
        guard path.hasPrefix("/"), clean(path) == path else {
            throw SyscallError("resolve", path, errno: EINVAL)
        }
        let rootClean = clean(root)
        guard path == rootClean || path.hasPrefix(rootClean == "/" ? "/" : rootClean + "/") else {
            throw SyscallError("resolve beneath \(rootClean)", path, errno: EXDEV)
        }
        var fd = open(rootClean, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw SyscallError("open", rootClean) }
        defer { close(fd) }
        let rest = path.dropFirst(rootClean.utf8.count).split(separator: "/").map(String.init)
        var walked = rootClean
        for part in rest {
            walked += "/" + part
            var next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0 && errno == ENOENT && create {
                if mkdirat(fd, part, mode) != 0 && errno != EEXIST { throw SyscallError("mkdir", walked) }
                next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            if next < 0 {
                let e = errno
                // ELOOP: the component is a symlink; ENOTDIR: a file (or a link, for some kernels).
                if e == ELOOP || e == ENOTDIR {
                    let what = lstatMode(walked) == S_IFLNK ? "a symbolic link" : "not a directory"
                    throw SyscallError("resolve (\(walked) is \(what); links are not followed)", path, errno: e)
                }
                throw SyscallError("open", walked, errno: e)
            }
            close(fd)
            fd = next
        }
        return path
    }
}
