import CShim
import CryoLinux
import CryoOCI
import Glibc

/// The container's tmpfs mounts that CRIU would otherwise archive, moved to the host:
/// one tmpfs per container at `<container dir>/tmpfs`, mounted by cryod, holding
/// - `dev/`: bound at the container's /dev (Docker's default device nodes, the usual
///   symlinks, the mount points of pts, shm and mqueue, and /dev/console for a tty),
/// - `cgroup/`: bound at /sys/fs/cgroup as the holder of the v1 hierarchies (the spec's
///   `org.cryo.runtime.cgroup-holder` annotation; the runtime mounts the hierarchies in it),
/// - `masked/`: an empty read-only tmpfs of its own, bound read-only over every masked
///   directory (a read-only superblock: CRIU 4.2.1 restored one of these binds, the one
///   under /sys, with the flags of /dev's bind, i.e. writable).
/// CRIU sees external bind mounts (declared by CryoRuntime's CRIUMounts) instead of four
/// tmpfs mounts it packs with tar+gzip at every dump and unpacks at every restore.
/// Like ShmMount: a start gets a fresh one; a restore reuses the mount that is still there,
/// so on the same boot files the container made in /dev carry on; after a reboot it is
/// remade with the defaults before the restore.
enum ContainerTmpfs {
    /// The size of Docker's /dev tmpfs; mode of the root.
    static let data = "mode=755,size=65536k"

    static let devices: [(name: String, major: UInt32, minor: UInt32)] = [
        ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0),
    ]
    static let links: [(name: String, target: String)] = [
        ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"),
    ]
    static let mountPoints = ["pts", "shm", "mqueue"]

    static func dev(_ dir: String) -> String { dir + "/dev" }
    static func cgroup(_ dir: String) -> String { dir + "/cgroup" }
    static func masked(_ dir: String) -> String { dir + "/masked" }

    /// Mounts and fills the tmpfs. `fresh` (a start) replaces one still mounted; otherwise
    /// (a restore) a mounted one is kept as it is.
    /// `devices`: the spec's extra nodes (`--device`, `--privileged`) under /dev, which a start
    /// gets from the runtime but a restore after a reboot must find here.
    static func prepare(_ dir: String, fresh: Bool, tty: Bool, devices: [Spec.Device] = []) throws {
        if FS.isMountPoint(dir) {
            if !fresh { return }
            release(dir)
        }
        try FS.mkdirAll(dir, mode: 0o700)
        // Not nodev: the device nodes are used through the bind mount.
        try Mount.mount("cryo-tmpfs", dir, type: "tmpfs", flags: UInt(MS_NOSUID), data: data)
        do {
            try populate(dir, tty: tty, devices: devices)
        } catch {
            release(dir)
            throw CryoFailure(.internal, "preparing the container's host tmpfs \(dir)", cause: error)
        }
    }

    static func populate(_ dir: String, tty: Bool, devices extra: [Spec.Device] = []) throws {
        let dev = dev(dir)
        try FS.mkdirAll(dev, mode: 0o755)
        for d in devices {
            let path = dev + "/" + d.name
            try sys(cryo_mknod(path, 0o020000 /* S_IFCHR */ | 0o666, d.major, d.minor), "mknod", path)
            try sys(chmod(path, 0o666), "chmod", path)
        }
        for d in extra where d.path.hasPrefix("/dev/") && !d.path.split(separator: "/").contains("..") {
            let path = dev + String(d.path.dropFirst(4))
            if FS.lstatMode(path) != nil { continue }
            try FS.mkdirAll(FS.parent(path), mode: 0o755)
            let kind: UInt32 = d.type == "b" ? 0o060000 : 0o020000
            try sys(cryo_mknod(path, kind | ((d.fileMode ?? 0o666) & 0o7777), UInt32(d.major ?? 0), UInt32(d.minor ?? 0)), "mknod", path)
            try sys(chmod(path, mode_t((d.fileMode ?? 0o666) & 0o7777)), "chmod", path)   // not the umask's
            try sys(chown(path, d.uid ?? 0, d.gid ?? 0), "chown", path)
        }
        for l in links { try sys(symlink(l.target, dev + "/" + l.name), "symlink", dev + "/" + l.name) }
        for m in mountPoints { try FS.mkdirAll(dev + "/" + m, mode: 0o755) }
        // The runtime binds the pty slave over it; a restore needs the mount point back.
        if tty { try FS.touch(dev + "/console", mode: 0o600) }
        try FS.mkdirAll(cgroup(dir), mode: 0o755)
        try FS.mkdirAll(masked(dir), mode: 0o755)
        try Mount.mount("cryo-masked", masked(dir), type: "tmpfs",
                        flags: UInt(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC), data: "mode=555,size=4k")
    }

    /// MNT_DETACH takes the nested masked/ tmpfs along.
    static func release(_ dir: String) { Mount.detachAll(dir) }
}
