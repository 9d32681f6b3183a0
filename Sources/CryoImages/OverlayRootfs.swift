import CryoLinux
import Glibc

/// Mounts a container root filesystem as an overlay of an image's layer directories
/// (`ImageStore.lowerDirs(for:)`) under a writable upper directory.
///
/// mount(2) copies at most one page of option data, and overlayfs splits `lowerdir=` on
/// `:` and the options on `,`. So:
/// - when every path is free of `:`, `,` and `\` and the option string fits in a page,
///   the absolute paths are passed as they are (so /proc/mounts shows the real layers);
/// - otherwise (many layers, long store paths, odd characters) each directory is opened
///   `O_PATH` and passed as `/proc/self/fd/<n>` (at most ~18 bytes per layer: over 200
///   layers fit, Docker images have at most 127). overlayfs resolves the paths during
///   mount(2), so the descriptors are closed right after it. Unlike the chdir-and-relative-
///   paths trick this changes no process-wide state (the cwd), which a threaded daemon must
///   not do, and unlike short symlinks it leaves nothing on disk to clean up. Needs /proc
///   mounted in the caller's mount namespace.
/// The upper and work directories must be on the same filesystem (overlayfs's rule).
public enum OverlayRootfs {
    /// O_PATH (Glibc's Swift module does not export it).
    static let oPath: Int32 = 0o10000000

    /// mount(2) takes one page of data, including the terminating NUL.
    public static let maxOptionBytes = Int(getpagesize()) - 1

    /// Mounts an overlay at `target`: `lowerDirs` top-most first (as `ImageStore.lowerDirs`
    /// returns them), `upper` the container's writable layer, `work` overlayfs's scratch
    /// directory. `upper`, `work` and `target` must exist.
    public static func mount(lowerDirs: [String], upper: String, work: String, target: String,
                             flags: UInt = 0) throws {
        guard !lowerDirs.isEmpty else { throw CryoFailure(.invalidArchive, "overlay mount on \(target): no lower directories") }
        if let data = options(lowerDirs: lowerDirs, upper: upper, work: work) {
            try Mount.mount("overlay", target, type: "overlay", flags: flags, data: data)
            return
        }
        var fds: [Int32] = []
        defer { for fd in fds { close(fd) } }
        func fdPath(_ dir: String) throws -> String {
            let fd = try sys(open(dir, oPath | O_DIRECTORY | O_CLOEXEC), "open", dir)
            fds.append(fd)
            return "/proc/self/fd/\(fd)"
        }
        let lowers = try lowerDirs.map(fdPath)
        let data = "lowerdir=" + lowers.joined(separator: ":") + ",upperdir=" + (try fdPath(upper))
            + ",workdir=" + (try fdPath(work))
        guard data.utf8.count <= maxOptionBytes else {
            throw CryoFailure(.invalidArchive, "overlay mount on \(target): \(lowerDirs.count) layers do not fit in one page of mount options even as /proc/self/fd paths")
        }
        try Mount.mount("overlay", target, type: "overlay", flags: flags, data: data)
    }

    /// Unmounts `target`; if it is busy, detaches it (MNT_DETACH: it goes away when the last
    /// user is gone).
    public static func unmount(target: String) throws {
        if umount2(target, 0) == 0 { return }
        let e = errno
        if e == EBUSY {
            try Mount.unmount(target, flags: Int32(MNT_DETACH))
            return
        }
        throw SyscallError("umount", target, errno: e)
    }

    /// The option string with the paths as they are, or nil when it cannot be used
    /// (a path with `:`, `,`, `\` or a newline, or longer than one page).
    static func options(lowerDirs: [String], upper: String, work: String) -> String? {
        let all = lowerDirs + [upper, work]
        if all.contains(where: { $0.isEmpty || $0.contains(where: { ":,\\\n".contains($0) }) }) { return nil }
        let data = "lowerdir=" + lowerDirs.joined(separator: ":") + ",upperdir=" + upper + ",workdir=" + work
        return data.utf8.count <= maxOptionBytes ? data : nil
    }
}
