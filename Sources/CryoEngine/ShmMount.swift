import CShim
import CryoLinux
import Glibc

/// The container's /dev/shm: a tmpfs mounted on the host at `<container dir>/shm` and
/// bind-mounted into the container, as Docker and podman do. CRIU then sees an external
/// bind mount and leaves it alone, instead of archiving a tmpfs with tar at every
/// checkpoint and unpacking it at every restore. What that means for its contents:
/// a start gets a fresh, empty one (Docker's semantics); a restore reuses the mount that
/// is still there, so on the same boot the contents carry on across checkpoint/restore;
/// they are not part of the checkpoint, so after a reboot (or on another host) a restore
/// starts with an empty /dev/shm — as with podman.
enum ShmMount {
    /// Docker's default size: 64 MiB.
    static let defaultSize: Int64 = 64 << 20

    /// World-writable with the sticky bit, `size` bytes (≤ 0: the default).
    static func data(size: Int64) -> String { "mode=1777,size=\(size > 0 ? size : defaultSize)" }

    static func prepare(_ dir: String, fresh: Bool, size: Int64 = 0) throws {
        if FS.isMountPoint(dir) {
            if !fresh { return }
            try Mount.unmount(dir, flags: Int32(MNT_DETACH))
        }
        try FS.mkdirAll(dir, mode: 0o755)
        try Mount.mount("shm", dir, type: "tmpfs", flags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), data: data(size: size))
    }

    static func release(_ dir: String) { Mount.detachAll(dir) }
}
