import CryoLinux
import Glibc

/// CRIU's "cgroup yard" (the `cgroup_yard` request field): a directory holding one mount
/// per cgroup hierarchy, named the way CRIU names it, through which CRIU reaches the
/// hierarchies while it dumps and restores cgroups.
///
/// Why: without one, CRIU mounts every hierarchy itself on each dump and each restore, and
/// on this kernel (6.18) every cgroup2 mount made in the initial cgroup namespace takes a
/// write lock on `cgroup_threadgroup_rwsem` (`cgroup_favor_dynmods`), that is, waits out an
/// RCU grace period: ~10 ms per dump and ~17 ms per restore on the test machine, plus the
/// unmount of the tmpfs CRIU puts its yard on. Given a yard, CRIU mounts and unmounts nothing.
///
/// The entries are bind mounts of the host's own hierarchy mounts (a bind does not go
/// through the cgroup file system's mount path), made once and kept for the life of the
/// machine's /run, like CRIU's kernel-probe cache. They must be mounts, not symlinks: a
/// restored task moves itself into its cgroups through the yard after it has switched to
/// the container's root, where an absolute link would resolve inside the container.
enum CRIUCgroupYard {
    /// Shared by every cryo runtime root on the machine.
    static let defaultPath = "/run/cryo-criu-cgroup-yard"

    /// CRIU's name for a hierarchy's directory in the yard (criu/cgroup.c: the controllers as
    /// /proc/PID/cgroup lists them, comma-joined, "name=" dropped; "unified" for cgroup2).
    static func name(of h: CgroupLayout.Hierarchy) -> String {
        h.controllers.map { $0.hasPrefix("name=") ? String($0.dropFirst(5)) : $0 }.joined(separator: ",")
    }

    /// (entry name, mount point it binds) for every hierarchy of the layout.
    static func entries(_ layout: CgroupLayout) -> [(name: String, target: String)] {
        var out = layout.v1.map { (name(of: $0), $0.mountPoint) }
        if let u = layout.unified { out.append(("unified", u)) }
        return out
    }

    /// The yard at `dir` with every hierarchy of `layout` mounted in it; what is already
    /// there stays. Creation is serialised by a lock file, so concurrent callers mount once.
    static func ensure(at dir: String = defaultPath, layout: CgroupLayout) throws -> String {
        let want = entries(layout)
        if want.allSatisfy({ FS.isMountPoint(dir + "/" + $0.name) }) { return dir }
        try FS.mkdirAll(dir, mode: 0o700)
        let lockPath = dir + "/.lock"
        let lock = try sys(open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600), "open", lockPath)
        defer { close(lock) }
        guard retryingEINTR({ flock(lock, LOCK_EX) }) == 0 else { throw SyscallError("flock", lockPath) }
        for (name, target) in want where !FS.isMountPoint(dir + "/" + name) {
            let entry = dir + "/" + name
            try FS.mkdirAll(entry, mode: 0o700)
            do {
                try Mount.mount(target, entry, type: nil, flags: UInt(MS_BIND))
            } catch {
                throw CryoFailure(.internal, "preparing CRIU's cgroup yard: bind-mounting \(target) on \(entry)", cause: error)
            }
        }
        return dir
    }
}
