import CryoTestSupport
import Testing
import Glibc
@testable import CryoRuntime
import CryoLinux

/// /proc/self/mountinfo of a systemd hybrid host (Debian 10 / Ubuntu 20.04 style):
/// v1 controllers under /sys/fs/cgroup, cgroup2 at /sys/fs/cgroup/unified.
let hybridMountinfo = """
22 28 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
23 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
24 28 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=4001532k,nr_inodes=1000383,mode=755
25 24 0:22 / /dev/pts rw,nosuid,noexec,relatime shared:3 - devpts devpts rw,gid=5,mode=620,ptmxmode=000
26 28 0:23 / /run rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs tmpfs rw,size=804084k,mode=755
28 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
29 22 0:6 / /sys/kernel/security rw,nosuid,nodev,noexec,relatime shared:8 - securityfs securityfs rw
30 24 0:25 / /dev/shm rw,nosuid,nodev shared:4 - tmpfs tmpfs rw
32 22 0:27 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
33 32 0:28 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
34 32 0:29 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
35 22 0:30 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:12 - pstore pstore rw
37 32 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
38 32 0:33 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,freezer
39 32 0:34 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
40 32 0:35 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,net_cls,net_prio
41 32 0:36 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,pids
42 32 0:37 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,cpuset,clone_children
43 32 0:38 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:20 - cgroup cgroup rw,devices
44 32 0:39 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:21 - cgroup cgroup rw,blkio
45 32 0:40 / /sys/fs/cgroup/perf_event rw,nosuid,nodev,noexec,relatime shared:22 - cgroup cgroup rw,perf_event
46 32 0:41 / /sys/fs/cgroup/hugetlb rw,nosuid,nodev,noexec,relatime shared:23 - cgroup cgroup rw,hugetlb
47 32 0:42 / /sys/fs/cgroup/rdma rw,nosuid,nodev,noexec,relatime shared:24 - cgroup cgroup rw,rdma
48 32 0:43 / /sys/fs/cgroup/misc rw,nosuid,nodev,noexec,relatime shared:25 - cgroup cgroup rw,misc,release_agent=/run/cgmanager/agents/cgm-release-agent.misc
60 28 0:50 / /mnt/with\\040space rw,relatime shared:30 - tmpfs tmpfs rw
"""

/// A pure cgroup v2 host (Debian 12), with a second view of cgroup2 bind-mounted elsewhere.
let pureV2Mountinfo = """
22 29 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
23 29 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
29 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
26 22 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
27 22 0:25 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:5 - pstore pstore rw
28 22 0:26 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:6 - bpf bpf rw,mode=700
90 29 0:24 /system.slice /var/lib/other/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""

@Suite struct CgroupLayoutTests {
    @Test func hybridLayout() {
        let l = CgroupLayout.parse(mountinfo: hybridMountinfo)
        #expect(!l.isPureV2)
        #expect(l.unified == "/sys/fs/cgroup/unified")
        #expect(l.v1.map(\.mountPoint) == [
            "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/freezer", "/sys/fs/cgroup/memory",
            "/sys/fs/cgroup/net_cls,net_prio", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpuset", "/sys/fs/cgroup/devices",
            "/sys/fs/cgroup/blkio", "/sys/fs/cgroup/perf_event", "/sys/fs/cgroup/hugetlb", "/sys/fs/cgroup/rdma",
            "/sys/fs/cgroup/misc",
        ])
        let byName = Dictionary(uniqueKeysWithValues: l.v1.map { ($0.name, $0.controllers) })
        #expect(byName["systemd"] == ["name=systemd"])          // xattr is a mount option, not a controller
        #expect(byName["cpu,cpuacct"] == ["cpu", "cpuacct"])
        #expect(byName["net_cls,net_prio"] == ["net_cls", "net_prio"])
        #expect(byName["cpuset"] == ["cpuset"])                 // clone_children filtered
        #expect(byName["misc"] == ["misc"])                     // release_agent= filtered
        #expect(byName["freezer"] == ["freezer"])
        // Controller lookup finds combined hierarchies by either name.
        #expect(l.hierarchy(with: "cpuacct")?.mountPoint == "/sys/fs/cgroup/cpu,cpuacct")
        #expect(l.hierarchy(with: "cpu")?.mountPoint == "/sys/fs/cgroup/cpu,cpuacct")
        #expect(l.hierarchy(with: "io") == nil)
        #expect(l.hierarchy(with: "cpuacct,cpu") == nil)
    }

    @Test func pureV2Layout() {
        let l = CgroupLayout.parse(mountinfo: pureV2Mountinfo)
        #expect(l.isPureV2)
        #expect(l.v1.isEmpty)
        #expect(l.unified == "/sys/fs/cgroup")                  // the first cgroup2 mount wins
    }

    /// While CRIU restores, it mounts each hierarchy again in a temporary "cgyard"; those
    /// mounts appear in the host's mountinfo and vanish again. They must not be taken for
    /// hierarchies of their own, nor win over the /sys/fs/cgroup mounts.
    @Test func criuCgyardMountsAreNotHierarchies() {
        let yard = "/var/tmp/x/restore-work/.criu.cgyard.daRleR"
        let before = "99 28 0:36 / \(yard)/pids rw,relatime shared:50 - cgroup cgroup rw,pids\n"
            + "98 28 0:28 / \(yard)/unified rw,relatime shared:51 - cgroup2 cgroup2 rw\n"
        let after = "100 28 0:32 / \(yard)/cpu,cpuacct rw,relatime shared:52 - cgroup cgroup rw,cpuacct,cpu\n"
            + "101 28 0:34 /cryo /mnt/memview rw,relatime shared:53 - cgroup cgroup rw,memory\n"
        let l = CgroupLayout.parse(mountinfo: before + hybridMountinfo + after)
        #expect(l.unified == "/sys/fs/cgroup/unified")
        #expect(l.v1.count == 13)
        #expect(l.hierarchy(with: "pids")?.mountPoint == "/sys/fs/cgroup/pids")
        #expect(l.hierarchy(with: "cpu")?.mountPoint == "/sys/fs/cgroup/cpu,cpuacct")
        #expect(l.hierarchy(with: "memory")?.mountPoint == "/sys/fs/cgroup/memory")
        #expect(!l.v1.contains { $0.mountPoint.hasPrefix(yard) || $0.mountPoint == "/mnt/memview" })
    }

    @Test func pureV1AndEmptyLayouts() {
        let v1Only = hybridMountinfo.split(separator: "\n").filter { !$0.contains(" - cgroup2 ") }.joined(separator: "\n")
        let l = CgroupLayout.parse(mountinfo: v1Only)
        #expect(l.unified == nil)
        #expect(!l.isPureV2)
        #expect(l.v1.count == 13)

        let none = CgroupLayout.parse(mountinfo: "")
        #expect(none.v1.isEmpty && none.unified == nil && !none.isPureV2)
        let c = Cgroup(path: "/cryo/x", layout: none)
        #expect(c.directories.isEmpty)
        #expect(c.freezerDir == nil)
    }

    @Test func malformedLinesAreSkipped() {
        let text = """
        garbage
        1 2 3 - cgroup2 cgroup2 rw
        33 32 0:28 / /sys/fs/cgroup/unified rw shared:10 - cgroup2
        34 32 0:29 / /sys/fs/cgroup/pids rw,nosuid shared:11 - cgroup cgroup rw,pids

        """
        let l = CgroupLayout.parse(mountinfo: text)
        #expect(l.unified == nil)
        #expect(l.v1.map(\.mountPoint) == ["/sys/fs/cgroup/pids"])
    }

    @Test func duplicateV1MountPointsAreListedOnce() {
        let line = "41 32 0:36 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,pids"
        let again = "77 32 0:36 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,pids"
        let l = CgroupLayout.parse(mountinfo: line + "\n" + again)
        #expect(l.v1.count == 1)
    }

    @Test func hybridCgroupDirectories() {
        let layout = CgroupLayout.parse(mountinfo: hybridMountinfo)
        let c = Cgroup(path: "cryo/web", layout: layout)
        #expect(c.path == "/cryo/web")
        let dirs = c.directories
        #expect(dirs.count == layout.v1.count + 1)
        #expect(dirs.first?.name == "systemd")
        #expect(dirs.first?.dir == "/sys/fs/cgroup/systemd/cryo/web")
        #expect(dirs.contains { $0.name == "cpu,cpuacct" && $0.dir == "/sys/fs/cgroup/cpu,cpuacct/cryo/web" })
        #expect(dirs.last?.name == "")
        #expect(dirs.last?.dir == "/sys/fs/cgroup/unified/cryo/web")
        #expect(c.freezerDir == "/sys/fs/cgroup/freezer/cryo/web")
        #expect(c.dir(for: "memory") == "/sys/fs/cgroup/memory/cryo/web")
        #expect(c.dir(for: "cpuacct") == "/sys/fs/cgroup/cpu,cpuacct/cryo/web")
        #expect(c.dir(for: "io") == "/sys/fs/cgroup/unified/cryo/web")   // not in v1: the unified fallback
        #expect(c.unifiedDir == "/sys/fs/cgroup/unified/cryo/web")
    }

    @Test func hybridWithoutV1FreezerFreezesTheUnifiedCgroup() {
        let text = hybridMountinfo.split(separator: "\n").filter { !$0.contains("/freezer ") }.joined(separator: "\n")
        let c = Cgroup(path: "/cryo/web", layout: CgroupLayout.parse(mountinfo: text))
        #expect(c.freezerDir == "/sys/fs/cgroup/unified/cryo/web")
    }

    @Test func pureV2CgroupDirectories() {
        let c = Cgroup(path: "/cryo/web", layout: CgroupLayout.parse(mountinfo: pureV2Mountinfo))
        #expect(c.directories.map(\.name) == [""])
        #expect(c.directories.map(\.dir) == ["/sys/fs/cgroup/cryo/web"])
        #expect(c.freezerDir == "/sys/fs/cgroup/cryo/web")
        #expect(c.dir(for: "pids") == "/sys/fs/cgroup/cryo/web")
    }

    @Test func cgroupPathIsCleanedAndCannotClimb() {
        let layout = CgroupLayout.parse(mountinfo: pureV2Mountinfo)
        #expect(Cgroup(path: "/a//b/./c/", layout: layout).path == "/a/b/c")
        #expect(Cgroup(path: "../../etc", layout: layout).path == "/etc")
        #expect(Cgroup(path: "/cryo/../../../x", layout: layout).directories.map(\.dir) == ["/sys/fs/cgroup/x"])
        #expect(Cgroup(path: "", layout: layout).path == "/")
    }
}

@Suite struct DeviceRuleLineTests {
    @Test func lines() {
        #expect(Cgroup.deviceRuleLine(.init(allow: false, access: "rwm")) == "a")
        #expect(Cgroup.deviceRuleLine(.init(allow: true, type: "c", major: 1, minor: 3, access: "rwm")) == "c 1:3 rwm")
        #expect(Cgroup.deviceRuleLine(.init(allow: true, type: "c", major: 136, access: "rw")) == "c 136:* rw")
        #expect(Cgroup.deviceRuleLine(.init(allow: true, type: "b", major: -1, minor: -1, access: "m")) == "b *:* m")
        #expect(Cgroup.defaultAllowedDevices.contains { $0.major == 1 && $0.minor == 3 })
    }
}

/// CRIU's cgroup yard: one entry per hierarchy, named as CRIU names it (criu/cgroup.c), so
/// CRIU mounts nothing itself.
@Suite struct CRIUCgroupYardTests {
    @Test func hybridYardNamesFollowCRIU() {
        let l = CgroupLayout.parse(mountinfo: hybridMountinfo)
        let entries = Dictionary(uniqueKeysWithValues: CRIUCgroupYard.entries(l).map { ($0.name, $0.target) })
        #expect(entries["systemd"] == "/sys/fs/cgroup/systemd")             // "name=" dropped
        #expect(entries["cpu,cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct")     // co-mounted: comma-joined
        #expect(entries["unified"] == "/sys/fs/cgroup/unified")             // cgroup2
        #expect(entries["name=systemd"] == nil)
        #expect(entries.count == l.v1.count + 1)
    }

    @Test func pureV2YardHasOnlyUnified() {
        let l = CgroupLayout.parse(mountinfo: pureV2Mountinfo)
        #expect(CRIUCgroupYard.entries(l).map(\.name) == ["unified"])
    }

    /// Needs root (bind mounts), like every test here under CI; the yard is made in a
    /// private directory and unmounted again.
    @Test func ensureBindsEveryHierarchyOnce() throws {
        let t = try TempDir()
        let yard = t.at("yard")
        let layout = CgroupLayout.current()
        let want = CRIUCgroupYard.entries(layout)
        defer {
            for e in want { while umount2(yard + "/" + e.name, Int32(MNT_DETACH)) == 0 {} }
            t.remove()
        }
        try #require(!want.isEmpty, "this machine has no cgroup hierarchy mounted")
        _ = try CRIUCgroupYard.ensure(at: yard, layout: layout)
        _ = try CRIUCgroupYard.ensure(at: yard, layout: layout)     // again: nothing mounted twice
        for e in want {
            var a = stat(), b = stat()
            #expect(stat(yard + "/" + e.name, &a) == 0 && stat(e.target, &b) == 0)
            #expect(a.st_dev == b.st_dev && a.st_ino == b.st_ino, "\(e.name) is not a bind of \(e.target)")
            let mounts = try FS.readString("/proc/self/mountinfo").split(separator: "\n")
                .filter { $0.split(separator: " ").dropFirst(4).first.map(String.init) == yard + "/" + e.name }
            #expect(mounts.count == 1, "\(e.name) mounted \(mounts.count) times")
        }
    }
}
