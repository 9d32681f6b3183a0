import CShim
import Glibc

extension FS {
    /// An object found inside a container's root by `resolveInRoot`: an `CRYO_O_PATH` descriptor
    /// (the caller closes it) and where it is as the container sees it.
    public struct ResolvedInRoot: Sendable {
        public let fd: Int32
        /// Clean and absolute inside the root ("/" for the root itself), every link resolved.
        public let path: String
    }

    /// `O_PATH` (Glibc's Swift overlay does not carry it).
    public static let openPathOnly: Int32 = CRYO_O_PATH

    /// The most links one resolution follows (the kernel's MAXSYMLINKS).
    public static let maxLinksInRoot = 40

    /// Resolves `path` inside the directory `rootFD` as a process chrooted there would:
    /// symlinks are followed, an absolute link starts again at the root, `..` never climbs
    /// above it. Every step is an `openat(CRYO_O_PATH | O_NOFOLLOW)` relative to the descriptor of
    /// the directory before it, and `..` pops a descriptor of our own (the kernel's `..` is
    /// never used), so a container renaming or swapping its files meanwhile can move the
    /// result around inside its root but never out of it; a magic link (`/proc/N/root`) is
    /// read as text and resolved inside the root like any link, never followed by the kernel.
    /// Mount points below the root are crossed (a running container's volumes and tmpfs,
    /// seen through `/proc/PID/root`). With `followFinal` false a final symlink is returned
    /// itself. A missing component is ENOENT, a non-directory in the middle ENOTDIR, too many
    /// links ELOOP (a `SyscallError` naming `display` and the component).
    ///
    /// With `allowMissing`, a missing component ends the walk without an error: the rest of
    /// the path is appended as it is (`..` taken lexically) and `fd` is the last directory
    /// found — what a link's target is called when the target does not exist.
    public static func resolveInRoot(_ rootFD: Int32, _ path: String, followFinal: Bool = true, allowMissing: Bool = false,
                                     display: String? = nil) throws -> ResolvedInRoot {
        OffActorCheck.check("resolve in root", path)
        let shown = display ?? path
        var pending = Array(components(path).reversed())   // a stack: the next component is last
        var dirs: [(fd: Int32, name: String)] = []
        defer { for d in dirs { close(d.fd) } }
        var links = 0
        while let part = pending.popLast() {
            if part == ".." {
                if let last = dirs.popLast() { close(last.fd) }
                continue
            }
            let parent = dirs.last?.fd ?? rootFD
            let fd = openat(parent, part, CRYO_O_PATH | O_NOFOLLOW | O_CLOEXEC)
            if fd < 0 && errno == ENOENT && allowMissing {
                var names = dirs.map(\.name)
                let dirFD = try dirs.popLast().map(\.fd) ?? sys(openat(rootFD, ".", CRYO_O_PATH | O_DIRECTORY | O_CLOEXEC), "open the container's root")
                for rest in [part] + pending.reversed() {
                    if rest == ".." { if !names.isEmpty { names.removeLast() } } else { names.append(rest) }
                }
                return ResolvedInRoot(fd: dirFD, path: "/" + names.joined(separator: "/"))
            }
            if fd < 0 {
                let e = errno
                let at = "/" + (dirs.map(\.name) + [part]).joined(separator: "/")
                throw SyscallError("resolve \(shown) in the container (at \(at))", errno: e)
            }
            var st = stat()
            guard fstat(fd, &st) == 0 else {
                let e = errno
                close(fd)
                throw SyscallError("fstat", part, errno: e)
            }
            let type = st.st_mode & S_IFMT
            let more = !pending.isEmpty
            if type == S_IFLNK && (more || followFinal) {
                links += 1
                let target = readlinkEmpty(fd)
                close(fd)
                guard links <= maxLinksInRoot, let target else {
                    throw SyscallError("resolve \(shown) in the container", errno: target == nil ? EIO : ELOOP)
                }
                if target.hasPrefix("/") {
                    for d in dirs { close(d.fd) }
                    dirs = []
                }
                pending += components(target).reversed()
                continue
            }
            if type != S_IFDIR && more {
                close(fd)
                let at = "/" + (dirs.map(\.name) + [part]).joined(separator: "/")
                throw SyscallError("resolve \(shown) in the container (\(at) is not a directory)", errno: ENOTDIR)
            }
            dirs.append((fd, part))
        }
        let resolved = "/" + dirs.map(\.name).joined(separator: "/")
        if let last = dirs.popLast() { return ResolvedInRoot(fd: last.fd, path: resolved) }
        let fd = openat(rootFD, ".", CRYO_O_PATH | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw SyscallError("open the container's root", errno: errno) }
        return ResolvedInRoot(fd: fd, path: "/")
    }

    /// The components of a path, without empty ones and ".".
    static func components(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init).filter { $0 != "." }
    }

    /// The text of the symlink `fd` (opened `CRYO_O_PATH | O_NOFOLLOW`), nil if unreadable.
    public static func readlinkEmpty(_ fd: Int32) -> String? {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlinkat(fd, "", &buf, buf.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Kernel filesystems a copy must not read or write through (`/proc`, `/sys`, cgroups…):
    /// their files are not data, and writing them changes the kernel.
    public static let kernelFilesystemTypes: Set<Int> = [
        0x9fa0,       // proc
        0x6265_6572,  // sysfs
        0x27e0eb,     // cgroup
        0x6367_7270,  // cgroup2
        0x1cd1,       // devpts
        0x1980_0202,  // mqueue
        0x6462_6720,  // debugfs
        0x7472_6163,  // tracefs
        0x7363_6673,  // securityfs
        0xcafe_4a11,  // bpf
        0xf97c_ff8c,  // selinuxfs
        0x6165_676c,  // pstore
        0xde5e_81e4,  // efivarfs
        0x6265_6570,  // configfs
        0x6573_5543,  // fusectl
        0x4249_4e4d,  // binfmt_misc
        0x6e73_6673,  // nsfs
    ]

    /// Whether the descriptor is on one of `kernelFilesystemTypes`.
    public static func isOnKernelFilesystem(_ fd: Int32) -> Bool {
        let t = cryo_fd_fs_type(fd)
        return t >= 0 && kernelFilesystemTypes.contains(Int(UInt32(truncatingIfNeeded: t)))
    }
}
