import CryoLinux
import CryoOCI

/// Mounts CRIU cannot dump by itself (their source lives outside the container)
/// and must be named: at dump as mountpoint → key, at restore as key → host
/// source. The keys are runc's, so images move between the two runtimes.
public enum CRIUMounts {
    public struct Mapping: Equatable, Sendable {
        public var key: String
        public var value: String
    }

    static let devNullKey = "/dev/null"

    /// Dump side: bind mounts (key = destination), masked files (→ "/dev/null"),
    /// the cgroup binds of /sys/fs/cgroup and its holder when an engine gave one.
    public static func forDump(spec: Spec, rootfs: String, cgroup: Cgroup) -> [Mapping] {
        var out: [Mapping] = []
        for m in spec.mounts ?? [] {
            if m.isBind {
                let dest = containerPath(m.destination, rootfs: rootfs)
                out.append(Mapping(key: dest, value: dest))
            } else if m.type == "cgroup" || m.type == "cgroup2" {
                let dest = containerPath(m.destination, rootfs: rootfs)
                if RootfsBuilder.cgroupHolder(spec, cgroup.layout) != nil { out.append(Mapping(key: dest, value: dest)) }
                guard !RootfsBuilder.hasCgroupNamespace(spec) else { continue }
                for b in RootfsBuilder.cgroupBinds(cgroup) where !b.isTmpfsRoot {
                    out.append(Mapping(key: dest + b.relative, value: dest + b.relative))
                }
            }
        }
        for p in spec.linux?.maskedPaths ?? [] where FS.exists(rootfs + p) && !FS.isDirectory(rootfs + p) {
            out.append(Mapping(key: p, value: devNullKey))
        }
        // Masked /proc files exist only inside the container's proc; declare the usual ones
        // when they exist on the host (their container copies are bind mounts of /dev/null).
        for p in spec.linux?.maskedPaths ?? [] where p.hasPrefix("/proc/") && !FS.exists(rootfs + p) && FS.exists(p) && !FS.isDirectory(p) {
            out.append(Mapping(key: p, value: devNullKey))
        }
        return out
    }

    /// Restore side: key → where the source is on this host now.
    public static func forRestore(spec: Spec, rootfs: String, cgroup: Cgroup) -> [Mapping] {
        var out: [Mapping] = []
        for m in spec.mounts ?? [] {
            if m.isBind {
                out.append(Mapping(key: containerPath(m.destination, rootfs: rootfs), value: m.source ?? ""))
            } else if m.type == "cgroup" || m.type == "cgroup2" {
                let dest = containerPath(m.destination, rootfs: rootfs)
                if let holder = RootfsBuilder.cgroupHolder(spec, cgroup.layout) { out.append(Mapping(key: dest, value: holder)) }
                // Each v1 hierarchy's bind, also for a container with its own cgroup namespace:
                // images another runtime dumped without one (runc under podman) name them, and
                // a key no image names is never used.
                let ownNamespace = RootfsBuilder.hasCgroupNamespace(spec)
                for b in RootfsBuilder.cgroupBinds(cgroup) where !b.isTmpfsRoot && (!ownNamespace || !b.relative.isEmpty) {
                    out.append(Mapping(key: dest + b.relative, value: b.source))
                }
            }
        }
        out.append(Mapping(key: devNullKey, value: "/dev/null"))
        return out
    }

    /// The destination as the container sees it: symlinks resolved inside the rootfs.
    static func containerPath(_ dest: String, rootfs: String) -> String {
        guard let resolved = try? FS.secureJoin(root: rootfs, dest), resolved.hasPrefix(rootfs) else { return FS.clean(dest) }
        let inner = String(resolved.dropFirst(rootfs.count))
        return inner.isEmpty ? "/" : inner
    }
}
