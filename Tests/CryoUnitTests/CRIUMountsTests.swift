import CryoOCI
import CryoTestSupport
import Testing
@testable import CryoLinux
@testable import CryoRuntime

@Suite struct CRIUMountsTests {
    typealias M = CRIUMounts.Mapping

    /// A rootfs with the usual distro symlinks and a few masked-path targets.
    private func makeRootfs() throws -> TempDir {
        let t = try TempDir("cryo-criumounts")
        try t.mkdir("proc")
        try t.mkdir("run")
        try t.mkdir("sys/firmware")                     // a masked directory (tmpfs, not /dev/null)
        try t.file("etc/masked-file", "secret")
        try t.symlink("var/run", to: "/run")            // absolute link: resolved inside the rootfs
        try t.symlink("etc/resolv.conf", to: "../run/systemd/resolve/stub-resolv.conf")
        return t
    }

    private func spec(cgroupNamespace: Bool) -> Spec {
        var namespaces = ["pid", "network", "ipc", "uts", "mount"].map { Spec.Namespace(type: $0) }
        if cgroupNamespace { namespaces.append(Spec.Namespace(type: "cgroup")) }
        let mounts = Spec.defaultMounts + [
            Spec.Mount(destination: "/etc/resolv.conf", type: "bind", source: "/var/lib/cryo/resolv.conf", options: ["rbind", "ro"]),
            Spec.Mount(destination: "/data", source: "/srv/data", options: ["bind", "rprivate"]),
            Spec.Mount(destination: "/var/run/app", type: "none", source: "/run/app", options: ["rbind"]),
            Spec.Mount(destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev"]),
        ]
        return Spec(
            process: Spec.Process(args: ["sh"]),
            root: Spec.Root(path: "rootfs"),
            mounts: mounts,
            linux: Spec.Linux(namespaces: namespaces,
                              maskedPaths: ["/etc/masked-file", "/sys/firmware", "/nonexistent/file",
                                            "/proc/version", "/proc/nonexistent-cryo-unit"]))
    }

    /// Every v1 hierarchy in mountinfo order, the named one (systemd) too: runc 1.1 binds these.
    private let hybridV1Names = ["systemd", "cpu,cpuacct", "freezer", "memory", "net_cls,net_prio", "pids", "cpuset", "devices",
                                 "blkio", "perf_event", "hugetlb", "rdma", "misc"]

    private let bindKeys = ["/run/systemd/resolve/stub-resolv.conf", "/data", "/run/app"]
    private let bindSources = ["/var/lib/cryo/resolv.conf", "/srv/data", "/run/app"]

    @Test func hybridWithoutCgroupNamespace() throws {
        let t = try makeRootfs()
        defer { t.remove() }
        let cgroup = Cgroup(path: "/cryo/web", layout: CgroupLayout.parse(mountinfo: hybridMountinfo))
        let s = spec(cgroupNamespace: false)
        let dump = CRIUMounts.forDump(spec: s, rootfs: t.path, cgroup: cgroup)
        let restore = CRIUMounts.forRestore(spec: s, rootfs: t.path, cgroup: cgroup)

        // The v1 hierarchies (name=systemd too, not the unified one), then binds, then masked files.
        // These are runc's keys: /sys/fs/cgroup/ + the host's directory name of each hierarchy.
        let cgroupKeys = hybridV1Names.map { "/sys/fs/cgroup/" + $0 }
        #expect(dump == cgroupKeys.map { M(key: $0, value: $0) }
                + bindKeys.map { M(key: $0, value: $0) }
                + [M(key: "/etc/masked-file", value: "/dev/null"), M(key: "/proc/version", value: "/dev/null")])
        #expect(restore == hybridV1Names.map { M(key: "/sys/fs/cgroup/" + $0, value: "/sys/fs/cgroup/\($0)/cryo/web") }
                + zip(bindKeys, bindSources).map { M(key: $0, value: $1) }
                + [M(key: "/dev/null", value: "/dev/null")])
        #expect(dump.contains(M(key: "/sys/fs/cgroup/systemd", value: "/sys/fs/cgroup/systemd")))
        #expect(restore.contains(M(key: "/sys/fs/cgroup/systemd", value: "/sys/fs/cgroup/systemd/cryo/web")))
        #expect(!dump.contains { $0.key.hasSuffix("/unified") })
        checkDumpAndRestoreAgree(dump, restore)
    }

    /// cryo's own dump has no per-controller binds (the container has its cgroup namespace);
    /// its restore still names them, for images runc dumped without one (podman's exports).
    @Test func hybridWithCgroupNamespaceHasNoCgroupBinds() throws {
        let t = try makeRootfs()
        defer { t.remove() }
        let cgroup = Cgroup(path: "/cryo/web", layout: CgroupLayout.parse(mountinfo: hybridMountinfo))
        let s = spec(cgroupNamespace: true)
        let dump = CRIUMounts.forDump(spec: s, rootfs: t.path, cgroup: cgroup)
        let restore = CRIUMounts.forRestore(spec: s, rootfs: t.path, cgroup: cgroup)
        #expect(!dump.contains { $0.key.hasPrefix("/sys/fs/cgroup") })
        #expect(dump.map(\.key) == bindKeys + ["/etc/masked-file", "/proc/version"])
        #expect(restore == hybridV1Names.map { M(key: "/sys/fs/cgroup/" + $0, value: "/sys/fs/cgroup/\($0)/cryo/web") }
                + zip(bindKeys, bindSources).map { M(key: $0, value: $1) } + [M(key: "/dev/null", value: "/dev/null")])
        checkDumpAndRestoreAgree(dump, restore)
    }

    @Test func pureV2WithoutCgroupNamespace() throws {
        let t = try makeRootfs()
        defer { t.remove() }
        let cgroup = Cgroup(path: "/cryo/web", layout: CgroupLayout.parse(mountinfo: pureV2Mountinfo))
        let s = spec(cgroupNamespace: false)
        let dump = CRIUMounts.forDump(spec: s, rootfs: t.path, cgroup: cgroup)
        let restore = CRIUMounts.forRestore(spec: s, rootfs: t.path, cgroup: cgroup)
        #expect(dump.first == M(key: "/sys/fs/cgroup", value: "/sys/fs/cgroup"))
        #expect(restore.first == M(key: "/sys/fs/cgroup", value: "/sys/fs/cgroup/cryo/web"))
        #expect(dump.filter { $0.key.hasPrefix("/sys/fs/cgroup") }.count == 1)
        checkDumpAndRestoreAgree(dump, restore)
    }

    @Test func pureV2WithCgroupNamespace() throws {
        let t = try makeRootfs()
        defer { t.remove() }
        let cgroup = Cgroup(path: "/cryo/web", layout: CgroupLayout.parse(mountinfo: pureV2Mountinfo))
        let s = spec(cgroupNamespace: true)
        let dump = CRIUMounts.forDump(spec: s, rootfs: t.path, cgroup: cgroup)
        let restore = CRIUMounts.forRestore(spec: s, rootfs: t.path, cgroup: cgroup)
        #expect(!dump.contains { $0.key.hasPrefix("/sys/fs/cgroup") })
        checkDumpAndRestoreAgree(dump, restore)
    }

    @Test func cgroupHolderIsExternalOnHybridHosts() throws {
        // An engine's annotation: /sys/fs/cgroup is a bind of a host directory, declared
        // external (dump: key = destination; restore: the holder), with or without cgroupns.
        let t = try makeRootfs()
        defer { t.remove() }
        let cgroup = Cgroup(path: "/cryo/web", layout: CgroupLayout.parse(mountinfo: hybridMountinfo))
        for ns in [true, false] {
            var s = spec(cgroupNamespace: ns)
            s.annotations = [RootfsBuilder.cgroupHolderAnnotation: "/var/lib/cryo/containers/x/tmpfs/cgroup"]
            let dump = CRIUMounts.forDump(spec: s, rootfs: t.path, cgroup: cgroup)
            let restore = CRIUMounts.forRestore(spec: s, rootfs: t.path, cgroup: cgroup)
            #expect(dump.first == M(key: "/sys/fs/cgroup", value: "/sys/fs/cgroup"))
            #expect(restore.first == M(key: "/sys/fs/cgroup", value: "/var/lib/cryo/containers/x/tmpfs/cgroup"))
            #expect(dump.filter { $0.key.hasPrefix("/sys/fs/cgroup") }.count == (ns ? 1 : 1 + hybridV1Names.count))
            checkDumpAndRestoreAgree(dump, restore)
        }
        // Pure v2 has no holder: the annotation changes nothing.
        let v2 = Cgroup(path: "/cryo/web", layout: CgroupLayout.parse(mountinfo: pureV2Mountinfo))
        var s = spec(cgroupNamespace: true)
        #expect(CRIUMounts.forDump(spec: s, rootfs: t.path, cgroup: v2).allSatisfy { !$0.key.hasPrefix("/sys/fs/cgroup") })
        s.annotations = [RootfsBuilder.cgroupHolderAnnotation: "/holder"]
        #expect(CRIUMounts.forDump(spec: s, rootfs: t.path, cgroup: v2).allSatisfy { !$0.key.hasPrefix("/sys/fs/cgroup") })
    }

    @Test func cgroupHolderEntries() {
        let layout = CgroupLayout.parse(mountinfo: hybridMountinfo)
        let withNS = RootfsBuilder.cgroupHolderEntries(layout, cgroupns: true)
        let without = RootfsBuilder.cgroupHolderEntries(layout, cgroupns: false)
        #expect(Set(without.dirs) == Set(hybridV1Names))
        #expect(Set(withNS.dirs) == Set(hybridV1Names))
        #expect(withNS.links.contains { $0.target == "cpu,cpuacct" && $0.name == "cpu" })
        #expect(withNS.links.contains { $0.target == "cpu,cpuacct" && $0.name == "cpuacct" })
    }

    @Test func devNullIsAlwaysMappedOnRestore() throws {
        let t = try makeRootfs()
        defer { t.remove() }
        let cgroup = Cgroup(path: "/c", layout: CgroupLayout.parse(mountinfo: pureV2Mountinfo))
        let empty = Spec(process: Spec.Process(args: ["sh"]), root: Spec.Root(path: "rootfs"))
        #expect(CRIUMounts.forDump(spec: empty, rootfs: t.path, cgroup: cgroup) == [])
        #expect(CRIUMounts.forRestore(spec: empty, rootfs: t.path, cgroup: cgroup) == [M(key: "/dev/null", value: "/dev/null")])
    }

    @Test func restoreIntoAnotherRootfsCopyGivesTheSameKeys() throws {
        // Keys depend on the container's view, not on where the bundle sits on the host.
        let a = try makeRootfs(), b = try makeRootfs()
        defer { a.remove(); b.remove() }
        let cgroup = Cgroup(path: "/cryo/web", layout: CgroupLayout.parse(mountinfo: hybridMountinfo))
        let s = spec(cgroupNamespace: false)
        let dump = CRIUMounts.forDump(spec: s, rootfs: a.path, cgroup: cgroup)
        let restore = CRIUMounts.forRestore(spec: s, rootfs: b.path, cgroup: cgroup)
        checkDumpAndRestoreAgree(dump, restore)
        #expect(!dump.contains { $0.key.hasPrefix(a.path) })
        #expect(!restore.contains { $0.key.hasPrefix(b.path) })
    }

    @Test func containerPath() throws {
        let t = try makeRootfs()
        defer { t.remove() }
        #expect(CRIUMounts.containerPath("/var/run/x", rootfs: t.path) == "/run/x")
        #expect(CRIUMounts.containerPath("/a/../b/./c", rootfs: t.path) == "/b/c")
        #expect(CRIUMounts.containerPath("/", rootfs: t.path) == "/")
        #expect(CRIUMounts.containerPath("/../../etc", rootfs: t.path) == "/etc")
    }

    /// What CRIU needs: every external key named at dump (the map's value) is
    /// given a source at restore (the map's key), and the bind/cgroup mount
    /// points are the same on both sides.
    private func checkDumpAndRestoreAgree(_ dump: [M], _ restore: [M], sourceLocation: SourceLocation = #_sourceLocation) {
        let restoreKeys = Set(restore.map(\.key))
        #expect(restoreKeys.count == restore.count, "duplicate restore keys", sourceLocation: sourceLocation)
        for m in dump {
            #expect(restoreKeys.contains(m.value), "dump key \(m.value) has no restore source", sourceLocation: sourceLocation)
        }
        let mountKeys = Set(dump.filter { $0.value != "/dev/null" }.map(\.key))
        #expect(mountKeys.isSubset(of: restoreKeys), sourceLocation: sourceLocation)
        // Beyond what cryo dumps, only the per-controller cgroup binds runc's images name.
        let extra = restoreKeys.subtracting(mountKeys).subtracting(["/dev/null"])
        #expect(extra.allSatisfy { $0.hasPrefix("/sys/fs/cgroup/") }, "\(extra)", sourceLocation: sourceLocation)
        #expect(restore.contains(M(key: "/dev/null", value: "/dev/null")), sourceLocation: sourceLocation)
        for m in restore where m.key != "/dev/null" {
            #expect(m.value.hasPrefix("/"), "restore source \(m.value) is not a host path", sourceLocation: sourceLocation)
        }
    }
}
