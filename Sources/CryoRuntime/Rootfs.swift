import CShim
import CryoLinux
import CryoOCI
import Glibc

/// Annotations engines can put in a spec to ask for cryo-runtime specific behaviour.
public enum RuntimeAnnotations {
    /// A host directory bound at a v1 /sys/fs/cgroup in place of the tmpfs holding the
    /// hierarchies (see `RootfsBuilder.mountCgroupHolder`).
    public static let cgroupHolder = "org.cryo.runtime.cgroup-holder"
}

/// Builds the container's mount namespace inside the init process (runs after
/// the mount namespace was unshared; everything is relative to `rootfs` until
/// pivot_root).
struct RootfsBuilder {
    let rootfs: String
    let spec: Spec
    let cgroup: Cgroup

    /// Steps before hooks: propagation, the rootfs bind, mounts and devices.
    func prepare() throws {
        // Keep our mounts from propagating back to the host.
        let prop = spec.linux?.rootfsPropagation.flatMap { MountOptions([$0]).propagation.first } ?? UInt(MS_SLAVE | MS_REC)
        try Mount.mount("", "/", type: nil, flags: prop)
        // pivot_root needs the new root to be a mount point.
        try Mount.mount(rootfs, rootfs, type: nil, flags: UInt(MS_BIND | MS_REC))
        for m in spec.mounts ?? [] where !isDeferred(m) { try mount(m) }
        try createDevices()
    }

    /// cgroupfs mounts under a cgroup namespace wait until init is in its cgroup.
    func isDeferred(_ m: Spec.Mount) -> Bool {
        (m.type == "cgroup" || m.type == "cgroup2") && Self.hasCgroupNamespace(spec)
    }

    func mountCgroupsDeferred() throws {
        for m in spec.mounts ?? [] where isDeferred(m) { try mount(m) }
    }

    func mount(_ m: Spec.Mount) throws {
        let dest = try FS.secureJoin(root: rootfs, m.destination)
        let opts = MountOptions(m.options ?? [])
        if m.type == "cgroup" || m.type == "cgroup2" {
            try mountCgroups(at: dest, options: opts)
            return
        }
        if m.isBind {
            let src = m.source ?? ""
            guard FS.exists(src) else { throw CryoFailure(.invalidArgument, "bind mount source \(src) for \(m.destination) does not exist") }
            if FS.isDirectory(src) { try FS.mkdirAll(dest) } else { try FS.touch(dest) }
            let recursive = opts.isRecursive ? UInt(MS_REC) : 0
            try Mount.mount(src, dest, type: nil, flags: UInt(MS_BIND) | recursive)
            // Bind mounts ignore most flags on the first call; a remount applies them.
            let extra = opts.flags & ~UInt(MS_BIND | MS_REC | MS_REMOUNT)
            if extra != 0 {
                try Mount.mount("", dest, type: nil, flags: UInt(MS_REMOUNT | MS_BIND) | extra)
            }
        } else {
            try FS.mkdirAll(dest)
            var flags = opts.flags
            var data = opts.dataString
            // A read-only mqueue/sysfs etc. is fine; devpts needs no special case.
            if m.type == "tmpfs" && data.isEmpty { data = "mode=755" }
            if m.type == "sysfs" && !(spec.linux?.namespaces ?? []).contains(where: { $0.type == "network" && $0.path == nil }) {
                // sysfs of a shared network namespace can only be bind-mounted. Not
                // recursively: a sysfs mount has no submounts, and the host's (its cgroup
                // tmpfs and hierarchies, debugfs, securityfs, …) would sit hidden under the
                // container's /sys/fs/cgroup, for CRIU to dump and restore at every C/R.
                try Mount.mount("/sys", dest, type: nil, flags: UInt(MS_BIND))
                flags &= ~UInt(MS_BIND)
                if flags != 0 { try? Mount.mount("", dest, type: nil, flags: UInt(MS_REMOUNT | MS_BIND) | flags) }
                return
            }
            try Mount.mount(m.source ?? m.type ?? "none", dest, type: m.type, flags: flags, data: data)
        }
        for p in opts.propagation { try Mount.mount("", dest, type: nil, flags: p) }
    }

    /// /sys/fs/cgroup: a tmpfs with the container's own cgroup directory of
    /// every hierarchy bind-mounted in (runc's layout). CRIU sees these binds as
    /// external mounts and the checkpoint code declares them.
    func mountCgroups(at dest: String, options: MountOptions) throws {
        try FS.mkdirAll(dest)
        if Self.hasCgroupNamespace(spec) {
            try mountCgroupFilesystems(at: dest, options: options)
            return
        }
        for bind in cgroupBinds() {
            if bind.isTmpfsRoot {
                try mountCgroupHolder(at: dest)
                continue
            }
            let target = dest + bind.relative
            try FS.mkdirAll(target)
            try Mount.mount(bind.source, target, type: nil, flags: UInt(MS_BIND))
            let ro = options.isReadOnly ? UInt(MS_RDONLY) : 0
            try Mount.mount("", target, type: nil, flags: UInt(MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC) | ro)
        }
        // Combined hierarchies get the usual symlinks (cpu -> cpu,cpuacct).
        for (target, name) in Self.cgroupHolderEntries(cgroup.layout, cgroupns: false).links {
            _ = symlink(target, dest + "/" + name)
        }
        if options.isReadOnly && !cgroup.layout.isPureV2 { try remountCgroupHolderReadOnly(dest) }
    }

    /// An engine's opt-in, as an annotation: a host directory bound at a v1 /sys/fs/cgroup in
    /// place of the tmpfs that holds the hierarchies (ignored on pure cgroup v2, which has no
    /// holder). CRIU then sees an external bind mount (CRIUMounts declares it) instead of a
    /// tmpfs it archives with tar at every dump and unpacks at every restore.
    static let cgroupHolderAnnotation = RuntimeAnnotations.cgroupHolder

    /// The holder directory the spec asks for, if it applies to this host.
    static func cgroupHolder(_ spec: Spec, _ layout: CgroupLayout) -> String? {
        guard !layout.isPureV2, !layout.v1.isEmpty, let dir = spec.annotations?[cgroupHolderAnnotation], dir.hasPrefix("/") else {
            return nil
        }
        return dir
    }

    /// What a v1 /sys/fs/cgroup holds, relative to it: one directory per hierarchy and the
    /// symlinks of combined controllers (cpu -> cpu,cpuacct). A named hierarchy's directory is
    /// its name under a cgroup namespace (a real mount), else the host's directory name (a bind).
    static func cgroupHolderEntries(_ layout: CgroupLayout, cgroupns: Bool) -> (dirs: [String], links: [(target: String, name: String)]) {
        var dirs: [String] = []
        for h in layout.v1 {
            let named = h.controllers.first { $0.hasPrefix("name=") }
            if let named, cgroupns {
                dirs.append(String(named.dropFirst(5)))
            } else {
                dirs.append(h.name)
            }
        }
        var links: [(String, String)] = []
        for h in layout.v1 where h.controllers.count > 1 {
            for c in h.controllers where !c.hasPrefix("name=") && c != h.name { links.append((h.name, c)) }
        }
        return (dirs, links)
    }

    /// Makes the mount points a restore needs in a holder directory (after a reboot the
    /// engine's host tmpfs comes back empty).
    static func populateCgroupHolder(_ spec: Spec, _ layout: CgroupLayout) throws {
        guard let dir = cgroupHolder(spec, layout) else { return }
        let entries = cgroupHolderEntries(layout, cgroupns: hasCgroupNamespace(spec))
        for d in entries.dirs { try FS.mkdirAll(dir + "/" + d) }
        for (target, name) in entries.links where FS.lstatMode(dir + "/" + name) == nil {
            try sys(symlink(target, dir + "/" + name), "symlink", dir + "/" + name)
        }
    }

    /// /sys/fs/cgroup's holder of the v1 hierarchies: a tmpfs, or the directory an engine asked for.
    func mountCgroupHolder(at dest: String) throws {
        guard let src = Self.cgroupHolder(spec, cgroup.layout) else {
            try Mount.mount("tmpfs", dest, type: "tmpfs", flags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), data: "mode=755")
            return
        }
        guard FS.isDirectory(src) else {
            throw CryoFailure(.invalidArgument, "cgroup holder \(src) (annotation \(Self.cgroupHolderAnnotation)) is not a directory")
        }
        try Mount.mount(src, dest, type: nil, flags: UInt(MS_BIND))
        // Private: the hierarchies mounted in it must not propagate anywhere.
        try Mount.mount("", dest, type: nil, flags: UInt(MS_PRIVATE))
        try Mount.mount("", dest, type: nil, flags: UInt(MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC))
    }

    /// A bind must be remounted as a bind: a plain remount would make the host's tmpfs read-only.
    func remountCgroupHolderReadOnly(_ dest: String) throws {
        let bind = Self.cgroupHolder(spec, cgroup.layout) != nil ? UInt(MS_BIND) : 0
        try Mount.mount("", dest, type: nil, flags: UInt(MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC) | bind)
    }

    static func hasCgroupNamespace(_ spec: Spec) -> Bool {
        (spec.linux?.namespaces ?? []).contains { $0.type == "cgroup" }
    }

    /// With a cgroup namespace the hierarchies are mounted for real (they show
    /// the namespace root): CRIU dumps such mounts itself, nothing is external.
    func mountCgroupFilesystems(at dest: String, options: MountOptions) throws {
        let flags = UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME) | (options.isReadOnly ? UInt(MS_RDONLY) : 0)
        if cgroup.layout.isPureV2 {
            try Mount.mount("cgroup2", dest, type: "cgroup2", flags: flags)
            return
        }
        try mountCgroupHolder(at: dest)
        for h in cgroup.layout.v1 {
            let named = h.controllers.first { $0.hasPrefix("name=") }
            let target = dest + "/" + (named.map { String($0.dropFirst(5)) } ?? h.name)
            try FS.mkdirAll(target)
            try Self.retryingBusy {
                try Mount.mount(named == nil ? "cgroup" : String(named!.dropFirst(5)), target, type: "cgroup", flags: flags,
                                data: h.controllers.joined(separator: ","))
            }
        }
        for (target, name) in Self.cgroupHolderEntries(cgroup.layout, cgroupns: true).links {
            _ = symlink(target, dest + "/" + name)
        }
        if options.isReadOnly { try remountCgroupHolderReadOnly(dest) }
    }

    /// A v1 cgroup mount can fail with EBUSY for a moment while the hierarchy's root is
    /// being reconfigured elsewhere (seen here while CRIU mounted its cgroup yard and the
    /// cgroup2 flags changed); it succeeds when retried.
    static func retryingBusy(_ body: () throws -> Void) throws {
        for attempt in 0..<50 {
            do {
                try body()
                return
            } catch let e as SyscallError where e.errno == EBUSY && attempt < 49 {
                usleep(20_000)
            }
        }
    }

    struct CgroupBind { var relative: String; var source: String; var isTmpfsRoot = false }

    /// The binds that make up /sys/fs/cgroup (relative to it), also used by checkpoint.
    func cgroupBinds() -> [CgroupBind] { Self.cgroupBinds(cgroup) }

    static func cgroupBinds(_ cgroup: Cgroup) -> [CgroupBind] {
        if cgroup.layout.isPureV2, let u = cgroup.layout.unified {
            return [CgroupBind(relative: "", source: u + cgroup.path)]
        }
        var out = [CgroupBind(relative: "", source: "", isTmpfsRoot: true)]
        // Every v1 hierarchy, named ones (name=systemd) included, under the host's directory
        // name: runc (1.1) binds exactly these and declares each to CRIU by its mount point, so
        // its images need a source for /sys/fs/cgroup/systemd too.
        for h in cgroup.layout.v1 {
            out.append(CgroupBind(relative: "/" + h.name, source: h.mountPoint + cgroup.path))
        }
        // Hybrid hosts: like runc, the unified hierarchy is not shown. Adding it would be an
        // external mount runc cannot map at restore, so images would no longer move between
        // the two runtimes.
        return out
    }

    static let defaultDevices: [(String, UInt32, UInt32)] = [
        ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
        ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
    ]

    func createDevices() throws {
        let dev = try FS.secureJoin(root: rootfs, "/dev")
        guard FS.isDirectory(dev) else { return }
        for (path, major, minor) in Self.defaultDevices {
            try makeDevice(path: path, type: "c", major: major, minor: minor, mode: 0o666, uid: 0, gid: 0)
        }
        for d in spec.linux?.devices ?? [] {
            try makeDevice(path: d.path, type: d.type, major: UInt32(d.major ?? 0), minor: UInt32(d.minor ?? 0),
                           mode: d.fileMode ?? 0o666, uid: d.uid ?? 0, gid: d.gid ?? 0)
        }
        let links = [("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"), ("/proc/self/fd/1", "/dev/stdout"),
                     ("/proc/self/fd/2", "/dev/stderr"), ("pts/ptmx", "/dev/ptmx")]
        for (target, link) in links {
            let p = rootfs + link
            if FS.lstatMode(p) == nil { _ = symlink(target, p) }
        }
    }

    func makeDevice(path: String, type: String, major: UInt32, minor: UInt32, mode: UInt32, uid: UInt32, gid: UInt32) throws {
        let dest = try FS.secureJoin(root: rootfs, path)
        try FS.mkdirAll(FS.parent(dest))
        if FS.lstatMode(dest) != nil { unlink(dest) }
        let kind: UInt32 = type == "b" ? UInt32(0o060000) : (type == "p" ? UInt32(0o010000) : UInt32(0o020000))
        if cryo_mknod(dest, kind | (mode & 0o7777), major, minor) != 0 {
            // No CAP_MKNOD (user namespaces): bind the host's node instead.
            try FS.touch(dest)
            try Mount.mount(path, dest, type: nil, flags: UInt(MS_BIND))
            return
        }
        try sys(chmod(dest, mode_t(mode & 0o7777)), "chmod", dest)
        try sys(chown(dest, uid, gid), "chown", dest)
    }

    /// Makes `rootfs` the root: pivot_root(".", ".") then detach the old root
    /// from underneath (runc's trick: no temporary directory needed).
    func pivot(noPivot: Bool) throws {
        try sys(chdir(rootfs), "chdir", rootfs)
        if noPivot {
            try Mount.mount(rootfs, "/", type: nil, flags: UInt(MS_MOVE))
            try sys(chroot("."), "chroot", rootfs)
        } else {
            let oldroot = try sys(open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC), "open", "/")
            defer { close(oldroot) }
            try sys(cryo_pivot_root(".", "."), "pivot_root", rootfs)
            try sys(fchdir(oldroot), "fchdir", "old root")
            // The old root must not propagate the unmount to the host.
            try Mount.mount("", ".", type: nil, flags: UInt(MS_SLAVE | MS_REC))
            try Mount.unmount(".", flags: Int32(MNT_DETACH))
        }
        try sys(chdir("/"), "chdir", "/")
    }

    /// After pivot: read-only root, masked and read-only paths.
    func finishAfterPivot() throws {
        if spec.root?.readonly == true {
            try Mount.mount("", "/", type: nil, flags: UInt(MS_REMOUNT | MS_BIND | MS_RDONLY))
        }
        for p in spec.linux?.readonlyPaths ?? [] where FS.exists(p) {
            try Mount.mount(p, p, type: nil, flags: UInt(MS_BIND | MS_REC))
            try Mount.mount("", p, type: nil, flags: UInt(MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC))
        }
        for p in spec.linux?.maskedPaths ?? [] where FS.exists(p) {
            if FS.isDirectory(p) {
                try Mount.mount("tmpfs", p, type: "tmpfs", flags: UInt(MS_RDONLY))
            } else {
                try Mount.mount("/dev/null", p, type: nil, flags: UInt(MS_BIND))
            }
        }
    }
}
