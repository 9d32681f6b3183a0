@testable import CryoOCI
import FoundationEssentials
import CryoTestSupport
import Testing
@testable import CryoLinux
@testable import CryoRuntime

/// `runc spec` output (runc 1.1).
let runcDefaultConfig = """
{
	"ociVersion": "1.0.2-dev",
	"process": {
		"terminal": true,
		"user": {
			"uid": 0,
			"gid": 0
		},
		"args": [
			"sh"
		],
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"TERM=xterm"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"effective": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"permitted": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"ambient": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			]
		},
		"rlimits": [
			{
				"type": "RLIMIT_NOFILE",
				"hard": 1024,
				"soft": 1024
			}
		],
		"noNewPrivileges": true
	},
	"root": {
		"path": "rootfs",
		"readonly": true
	},
	"hostname": "runc",
	"mounts": [
		{
			"destination": "/proc",
			"type": "proc",
			"source": "proc"
		},
		{
			"destination": "/dev",
			"type": "tmpfs",
			"source": "tmpfs",
			"options": [
				"nosuid",
				"strictatime",
				"mode=755",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/pts",
			"type": "devpts",
			"source": "devpts",
			"options": [
				"nosuid",
				"noexec",
				"newinstance",
				"ptmxmode=0666",
				"mode=0620",
				"gid=5"
			]
		},
		{
			"destination": "/dev/shm",
			"type": "tmpfs",
			"source": "shm",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"mode=1777",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/mqueue",
			"type": "mqueue",
			"source": "mqueue",
			"options": [
				"nosuid",
				"noexec",
				"nodev"
			]
		},
		{
			"destination": "/sys",
			"type": "sysfs",
			"source": "sysfs",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"ro"
			]
		},
		{
			"destination": "/sys/fs/cgroup",
			"type": "cgroup",
			"source": "cgroup",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"relatime",
				"ro"
			]
		}
	],
	"linux": {
		"resources": {
			"devices": [
				{
					"allow": false,
					"access": "rwm"
				}
			]
		},
		"namespaces": [
			{
				"type": "pid"
			},
			{
				"type": "network"
			},
			{
				"type": "ipc"
			},
			{
				"type": "uts"
			},
			{
				"type": "mount"
			},
			{
				"type": "cgroup"
			}
		],
		"maskedPaths": [
			"/proc/acpi",
			"/proc/asound",
			"/proc/kcore",
			"/proc/keys",
			"/proc/latency_stats",
			"/proc/timer_list",
			"/proc/timer_stats",
			"/proc/sched_debug",
			"/sys/firmware",
			"/proc/scsi"
		],
		"readonlyPaths": [
			"/proc/bus",
			"/proc/fs",
			"/proc/irq",
			"/proc/sys",
			"/proc/sysrq-trigger"
		]
	}
}
"""

/// Shaped like what podman (cgroupfs manager) writes: many keys cryo does not model.
let podmanConfig = """
{"ociVersion":"1.2.0","process":{"user":{"uid":1000,"gid":1000,"umask":18,"additionalGids":[1000,10]},
"args":["/bin/sh","-c","sleep infinity"],"env":["PATH=/usr/bin:/bin","container=podman","HOSTNAME=abc"],
"cwd":"/work","capabilities":{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_CHOWN","CAP_KILL"],
"permitted":["CAP_CHOWN","CAP_KILL"]},"rlimits":[{"type":"RLIMIT_NOFILE","hard":1048576,"soft":1048576},
{"type":"RLIMIT_NPROC","hard":4194304,"soft":4194304}],"oomScoreAdj":0,"apparmorProfile":"containers-default-0.57.4",
"selinuxLabel":"","ioPriority":{"class":"IOPRIO_CLASS_BE","priority":4},"scheduler":{"policy":"SCHED_OTHER"},
"terminal":false,"noNewPrivileges":false},
"root":{"path":"/var/lib/containers/storage/overlay/0123/merged"},"hostname":"abc",
"mounts":[{"destination":"/proc","type":"proc","source":"proc","options":["nosuid","noexec","nodev"]},
{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},
{"destination":"/etc/hosts","type":"bind","source":"/run/containers/storage/overlay-containers/0123/userdata/hosts",
"options":["bind","rprivate"],"uidMappings":[],"gidMappings":[]},
{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["rprivate","nosuid","noexec","nodev","relatime","ro"]}],
"hooks":{"createRuntime":[{"path":"/usr/libexec/podman/hook","args":["hook","create"],"env":["X=1"],"timeout":5}],
"poststop":[{"path":"/usr/bin/true"}]},
"annotations":{"io.container.manager":"libpod","org.opencontainers.image.stopSignal":"15","io.podman.annotations.autoremove":"FALSE"},
"linux":{"sysctl":{"net.ipv4.ping_group_range":"0 0"},
"resources":{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}],
"memory":{"limit":536870912,"swap":1073741824,"swappiness":60,"disableOOMKiller":false,"useHierarchy":true},
"cpu":{"shares":512,"quota":50000,"period":100000,"realtimeRuntime":0,"cpus":"0-1","mems":"0","idle":0},
"pids":{"limit":2048},"blockIO":{"weight":500},"hugepageLimits":[],"unified":{"memory.high":"400M"}},
"cgroupsPath":"/libpod_parent/libpod-0123",
"namespaces":[{"type":"pid"},{"type":"network","path":"/run/netns/netns-0123"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"cgroup"}],
"devices":[{"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":438,"uid":0,"gid":0}],
"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
"flags":["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],"listenerPath":"","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"valueTwo":0,"op":"SCMP_CMP_EQ"}],"comment":"x","includes":{},"excludes":{}}]},
"rootfsPropagation":"private","maskedPaths":["/proc/acpi","/proc/kcore"],"readonlyPaths":["/proc/bus"],
"mountLabel":"system_u:object_r:container_file_t:s0","intelRdt":{"closID":"x"},"personality":{"domain":"LINUX"},
"timeOffsets":{"monotonic":{"secs":1,"nanosecs":0}}},
"vm":{"hypervisor":{"path":"/x"}},"domainname":"example.org"}
"""

@Suite struct SpecDecodingTests {
    private func decode(_ text: String) throws -> Spec {
        try JSONDecoder().decode(Spec.self, from: Data(text.utf8))
    }

    @Test func decodesRuncDefaultConfig() throws {
        let s = try decode(runcDefaultConfig)
        #expect(s.ociVersion == "1.0.2-dev")
        let p = try #require(s.process)
        #expect(p.terminal == true)
        #expect(p.user == Spec.User(uid: 0, gid: 0))
        #expect(p.args == ["sh"])
        #expect(p.cwd == "/")
        #expect(p.env?.count == 2)
        #expect(p.capabilities?.bounding == ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
        #expect(p.capabilities?.inheritable == nil)
        #expect(p.rlimits == [Spec.Rlimit(type: "RLIMIT_NOFILE", hard: 1024, soft: 1024)])
        #expect(p.noNewPrivileges == true)
        #expect(s.root == Spec.Root(path: "rootfs", readonly: true))
        #expect(s.hostname == "runc")
        #expect(s.linux?.resources?.devices == [Spec.DeviceRule(allow: false, type: nil, major: nil, minor: nil, access: "rwm")])
        #expect(s.linux?.namespaces?.map(\.type) == ["pid", "network", "ipc", "uts", "mount", "cgroup"])
        #expect(s.linux?.namespaces?.allSatisfy { $0.path == nil } == true)
        #expect(s.mounts?.count == 7)
        #expect(s.mounts?.contains { $0.isBind } == false)
        // cryo's `spec` writes the same shape as runc's.
        let ours = Spec.defaultSpec()
        #expect(s.mounts == ours.mounts)
        #expect(s.linux?.maskedPaths == ours.linux?.maskedPaths)
        #expect(s.linux?.readonlyPaths == ours.linux?.readonlyPaths)
        #expect(s.process?.capabilities == ours.process?.capabilities)
        #expect(s.process?.rlimits == ours.process?.rlimits)
        #expect(s.process?.env == ours.process?.env)
        #expect(s.linux?.namespaces == ours.linux?.namespaces)
    }

    @Test func podmanConfigWithUnknownFields() throws {
        let s = try decode(podmanConfig)
        #expect(s.ociVersion == "1.2.0")
        #expect(s.domainname == "example.org")
        let p = try #require(s.process)
        #expect(p.user.uid == 1000)
        #expect(p.user.umask == 18)
        #expect(p.user.additionalGids == [1000, 10])
        #expect(p.args == ["/bin/sh", "-c", "sleep infinity"])
        #expect(p.cwd == "/work")
        #expect(p.rlimits?.map(\.type) == ["RLIMIT_NOFILE", "RLIMIT_NPROC"])
        #expect(p.apparmorProfile == "containers-default-0.57.4")
        #expect(p.oomScoreAdj == 0)
        #expect(p.terminal == false)
        #expect(s.root?.path == "/var/lib/containers/storage/overlay/0123/merged")
        #expect(s.root?.readonly == nil)
        #expect(s.mounts?.map(\.destination) == ["/proc", "/dev", "/etc/hosts", "/sys/fs/cgroup"])
        #expect(s.mounts?.filter(\.isBind).map(\.destination) == ["/etc/hosts"])
        #expect(s.hooks?.createRuntime?.first?.timeout == 5)
        #expect(s.hooks?.poststop?.first?.path == "/usr/bin/true")
        #expect(s.annotations?["io.container.manager"] == "libpod")
        let l = try #require(s.linux)
        #expect(l.cgroupsPath == "/libpod_parent/libpod-0123")
        #expect(l.namespaces?.first { $0.type == "network" }?.path == "/run/netns/netns-0123")
        #expect(l.resources?.memory?.limit == 536_870_912)
        #expect(l.resources?.memory?.swappiness == 60)
        #expect(l.resources?.cpu?.shares == 512)
        #expect(l.resources?.cpu?.quota == 50_000)
        #expect(l.resources?.cpu?.cpus == "0-1")
        #expect(l.resources?.pids?.limit == 2048)
        #expect(l.resources?.devices?.count == 2)
        #expect(l.devices?.first?.fileMode == 0o666)
        #expect(l.seccomp?.defaultErrnoRet == 38)
        #expect(l.seccomp?.syscalls?.count == 2)
        #expect(l.seccomp?.syscalls?.last?.args?.first?.op == "SCMP_CMP_EQ")
        #expect(l.sysctl?["net.ipv4.ping_group_range"] == "0 0")
        #expect(l.rootfsPropagation == "private")
        #expect(l.mountLabel == "system_u:object_r:container_file_t:s0")
    }

    @Test func defaultSpecRoundTrips() throws {
        for terminal in [true, false] {
            let spec = Spec.defaultSpec(terminal: terminal)
            let data = try JSONEncoder().encode(spec)
            let back = try JSONDecoder().decode(Spec.self, from: data)
            #expect(back == spec)
            #expect(back.process?.terminal == terminal)
        }
        let s = Spec.defaultSpec()
        #expect(s.process?.args == ["sh"])
        #expect(s.root == Spec.Root(path: "rootfs", readonly: true))
        #expect(s.mounts?.last?.type == "cgroup")
    }

    @Test func encodingLeavesOutUnsetFields() throws {
        let json = String(decoding: try JSONEncoder().encode(Spec.defaultSpec()), as: UTF8.self)
        #expect(!json.contains("null"))
        #expect(json.contains("\"ociVersion\""))
        #expect(!json.contains("\"hooks\""))
    }
}

@Suite struct LoadSpecTests {
    private func bundle(_ config: String) throws -> TempDir {
        let t = try TempDir("cryo-bundle")
        try t.file("config.json", config)
        return t
    }

    @Test func loadsRuncAndPodmanConfigs() throws {
        let a = try bundle(runcDefaultConfig)
        defer { a.remove() }
        #expect(try Runtime.loadSpec(bundle: a.path).hostname == "runc")
        let b = try bundle(podmanConfig)
        defer { b.remove() }
        #expect(try Runtime.loadSpec(bundle: b.path).linux?.cgroupsPath == "/libpod_parent/libpod-0123")
    }

    @Test func argsAsAStringIsReportedByPath() throws {
        let broken = runcDefaultConfig.replacingOnce("\"args\": [\n\t\t\t\"sh\"\n\t\t],", with: "\"args\": \"sh\",")
        #expect(broken != runcDefaultConfig)
        let t = try bundle(broken)
        defer { t.remove() }
        let e = #expect(throws: CryoFailure.self) { try Runtime.loadSpec(bundle: t.path) }
        let msg = e?.message ?? ""
        #expect(msg.contains("process.args"), "\(msg)")
        #expect(msg.contains("not a valid OCI spec"), "\(msg)")
        #expect(msg.contains(t.path), "\(msg)")
    }

    @Test func otherDecodingErrorsNameTheField() throws {
        let cases: [(String, String)] = [
            (#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"args":["sh"]},"root":{"path":"r"}}"#, "process.cwd"),
            (#"{"ociVersion":"1.0.2","process":{"user":{"uid":"root","gid":0},"cwd":"/"},"root":{"path":"r"}}"#, "process.user.uid"),
            (#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"cwd":"/"},"root":{"path":"r"},"mounts":[{"destination":"/a"},{"type":"bind"}]}"#, "mounts.[1].destination"),
            (#"{"ociVersion":"1.0.2","process":"#, "not a valid OCI spec"),
        ]
        for (config, needle) in cases {
            let t = try bundle(config)
            defer { t.remove() }
            let e = #expect(throws: CryoFailure.self) { try Runtime.loadSpec(bundle: t.path) }
            #expect(e?.message.contains(needle) == true, "\(e?.message ?? "no error") should mention \(needle)")
        }
    }

    @Test func semanticChecks() throws {
        let missing = #expect(throws: CryoFailure.self) { try Runtime.loadSpec(bundle: "/nonexistent-cryo-unit") }
        #expect(missing?.message.contains("config.json not found") == true)

        let noProcess = try bundle(#"{"ociVersion":"1.0.2","root":{"path":"rootfs"}}"#)
        defer { noProcess.remove() }
        let e1 = #expect(throws: CryoFailure.self) { try Runtime.loadSpec(bundle: noProcess.path) }
        #expect(e1?.message.contains("process is required") == true)

        let noRoot = try bundle(#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"cwd":"/"}}"#)
        defer { noRoot.remove() }
        let e2 = #expect(throws: CryoFailure.self) { try Runtime.loadSpec(bundle: noRoot.path) }
        #expect(e2?.message.contains("root is required") == true)

        let userns = try bundle(runcDefaultConfig.replacingOnce(#""type": "cgroup"\#n"#, with: #""type": "user"\#n"#))
        defer { userns.remove() }
        let e3 = #expect(throws: CryoFailure.self) { try Runtime.loadSpec(bundle: userns.path) }
        #expect(e3?.message.contains("user namespaces") == true)

        let systemd = try bundle(podmanConfig.replacingOnce("/libpod_parent/libpod-0123", with: "machine.slice:libpod:0123"))
        defer { systemd.remove() }
        let e4 = #expect(throws: CryoFailure.self) { try Runtime.loadSpec(bundle: systemd.path) }
        #expect(e4?.message.contains("machine.slice:libpod:0123") == true)
    }

    @Test func rootfsAndCgroupPaths() {
        var s = Spec.defaultSpec()
        #expect(Runtime.rootfsPath(s, bundle: "/b/x") == "/b/x/rootfs")
        s.root = Spec.Root(path: "/abs//root/./fs/")
        #expect(Runtime.rootfsPath(s, bundle: "/b/x") == "/abs/root/fs")
        s.root = Spec.Root(path: "../shared/rootfs")
        #expect(Runtime.rootfsPath(s, bundle: "/b/x") == "/b/shared/rootfs")
        #expect(Runtime.cgroupPath(s, id: "web") == "/cryo/web")
        s.linux?.cgroupsPath = "/mine/web"
        #expect(Runtime.cgroupPath(s, id: "web") == "/mine/web")
    }
}

extension String {
    /// Replaces the first occurrence (no Foundation needed).
    func replacingOnce(_ target: String, with replacement: String) -> String {
        let s = Array(utf8), t = Array(target.utf8)
        guard !t.isEmpty, s.count >= t.count else { return self }
        for i in 0...(s.count - t.count) where Array(s[i..<(i + t.count)]) == t {
            return String(decoding: s[..<i] + Array(replacement.utf8) + s[(i + t.count)...], as: UTF8.self)
        }
        return self
    }
}
