import CShim
import Glibc

/// Network namespaces kept in a file (a bind mount of the nsfs inode), like `ip netns`:
/// a container joins one by path, so CRIU treats it as external — it neither dumps the
/// namespace's links, routes and firewall rules nor recreates them at restore.
public enum NetworkNamespace {
    /// Creates a new network namespace with "lo" up and binds it at `path`.
    /// Switches only the calling thread, and back before returning; call it on a
    /// thread of its own (a pool thread), never from async code that may migrate.
    public static func create(at path: String) throws {
        let original = try sys(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), "open", "/proc/thread-self/ns/net")
        defer { close(original) }
        try FS.mkdirAll(FS.parent(path), mode: 0o711)
        try FS.touch(path, mode: 0o444)
        try sys(cryo_unshare(NamespaceKind.network.cloneFlag), "unshare(CLONE_NEWNET)", path)
        defer {
            // A thread left in the container's namespace would poison later work.
            if cryo_setns(original, NamespaceKind.network.cloneFlag) != 0 { fatalError("setns back to the original network namespace failed: errno \(errno)") }
        }
        try sys(cryo_loopback_up(), "ioctl(SIOCSIFFLAGS lo)", path)
        try Mount.mount("/proc/thread-self/ns/net", path, type: nil, flags: UInt(MS_BIND))
    }

    /// Runs `body` with the calling thread in the namespace at `path` (so helpers it spawns
    /// start there), then switches back. Same rule as `create`: a thread of its own only.
    public static func withThread<T>(in path: String, _ body: () throws -> T) throws -> T {
        let original = try sys(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), "open", "/proc/thread-self/ns/net")
        defer { close(original) }
        let target = try sys(open(path, O_RDONLY | O_CLOEXEC), "open", path)
        defer { close(target) }
        try sys(cryo_setns(target, NamespaceKind.network.cloneFlag), "setns(CLONE_NEWNET)", path)
        defer {
            if cryo_setns(original, NamespaceKind.network.cloneFlag) != 0 { fatalError("setns back to the original network namespace failed: errno \(errno)") }
        }
        return try body()
    }

    /// Unmounts and removes a namespace file; the namespace dies with its last user.
    public static func remove(at path: String) {
        _ = umount2(path, Int32(MNT_DETACH))
        unlink(path)
    }

    public static func exists(at path: String) -> Bool { FS.isMountPoint(path) }

    /// `create` unless one is already bound at `path` (a container's namespace is made
    /// once, by whichever of create-for-restore and start comes first).
    public static func ensure(at path: String) throws {
        if !exists(at: path) { try create(at: path) }
    }
}
