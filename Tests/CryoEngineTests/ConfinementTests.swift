@testable import CryoEngine
import CryoOCI
@testable import CryoRuntime
import Testing

/// The default seccomp profile, Docker-format profiles and the confinement options.
@Suite struct ConfinementTests {
    let amd64 = (scmp: "SCMP_ARCH_X86_64", go: "amd64")
    let allCaps = Set(Confinement.knownCapabilities)
    let v1 = CgroupLayout(v1: [.init(mountPoint: "/sys/fs/cgroup/devices", controllers: ["devices"])], unified: nil)

    func names(_ s: Spec.Seccomp, action: String = "SCMP_ACT_ALLOW", args: Bool = false) -> Set<String> {
        Set((s.syscalls ?? []).filter { $0.action == action && (($0.args ?? []).isEmpty != args) }.flatMap(\.names))
    }

    @Test func defaultProfileAsDockers() throws {
        let s = try DefaultSeccompProfile.profile.resolve(capabilities: SpecBuilder.defaultCapabilities, arch: amd64, kernel: (6, 18))
        #expect(s.defaultAction == "SCMP_ACT_ERRNO")
        #expect(s.defaultErrnoRet == 1)
        #expect(s.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        let allowed = names(s)
        for n in ["read", "getpid", "chroot", "ptrace", "arch_prctl", "modify_ldt", "vmsplice", "setns"] where n != "setns" {
            #expect(allowed.contains(n), "\(n)")
        }
        for n in ["keyctl", "add_key", "request_key", "io_uring_setup", "perf_event_open", "bpf", "mount", "unshare", "setns",
                  "kexec_load", "open_by_handle_at", "clock_settime", "swapon", "reboot", "userfaultfd", "clone3", "personality",
                  "socket", "clone", "cacheflush"] {
            #expect(!allowed.contains(n), "\(n)")
        }
        // Argument rules: personality's five personas, socket without AF_VSOCK, clone without namespace flags.
        let personalities = (s.syscalls ?? []).filter { $0.names == ["personality"] }.compactMap { $0.args?.first?.value }
        #expect(Set(personalities) == [0, 8, 0x20000, 0x20008, 0xffff_ffff])
        let socket = try #require((s.syscalls ?? []).first { $0.names == ["socket"] })
        #expect(socket.args == [Spec.SyscallArg(index: 0, value: 40, op: "SCMP_CMP_NE")])
        let clone = try #require((s.syscalls ?? []).first { $0.names == ["clone"] })
        #expect(clone.args == [Spec.SyscallArg(index: 0, value: 0x7E02_0000, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ")])
        let clone3 = try #require((s.syscalls ?? []).first { $0.names == ["clone3"] })
        #expect(clone3.action == "SCMP_ACT_ERRNO")
        #expect(clone3.errnoRet == 38)
    }

    @Test func capabilityDependentRules() throws {
        let admin = try DefaultSeccompProfile.profile.resolve(capabilities: SpecBuilder.defaultCapabilities + ["CAP_SYS_ADMIN"],
                                                              arch: amd64, kernel: (6, 18))
        let allowed = names(admin)
        for n in ["mount", "unshare", "setns", "clone", "clone3", "bpf", "perf_event_open", "sethostname"] { #expect(allowed.contains(n), "\(n)") }
        #expect(!((admin.syscalls ?? []).contains { $0.names == ["clone3"] && $0.action == "SCMP_ACT_ERRNO" }))
        #expect(!allowed.contains("keyctl"))
        let none = try DefaultSeccompProfile.profile.resolve(capabilities: [], arch: amd64, kernel: (6, 18))
        #expect(!names(none).contains("chroot"))
        #expect(names(none).contains("ptrace"))   // kernel >= 4.8
        let old = try DefaultSeccompProfile.profile.resolve(capabilities: [], arch: amd64, kernel: (4, 4))
        #expect(!names(old).contains("ptrace"))
        let arm = try DefaultSeccompProfile.profile.resolve(capabilities: [], arch: ("SCMP_ARCH_AARCH64", "arm64"), kernel: (6, 1))
        #expect(arm.architectures == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
        #expect(names(arm).contains("cacheflush"))
        #expect(!names(arm).contains("arch_prctl"))
    }

    @Test func userProfileInDockersFormat() throws {
        let p = try SeccompProfile.decode("""
        {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
         "syscalls": [{"name": "personality", "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                      {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_ADMIN"]}}]}
        """)
        let s = try p.resolve(capabilities: ["CAP_SYS_ADMIN"], arch: amd64, kernel: (6, 18))
        #expect(s.syscalls == [Spec.Syscall(names: ["personality"], action: "SCMP_ACT_ERRNO", errnoRet: 13)])
        #expect(s.architectures == ["SCMP_ARCH_X86_64"])
        for bad in ["{\"defaultAction\": \"SCMP_ACT_NOTIFY\"}", "{\"defaultAction\": \"SCMP_ACT_NOPE\"}", "[1]", "{nope",
                    "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": \"/run/agent.sock\"}",
                    "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_WHAT\"}]}]}"] {
            #expect(throws: (any Error).self, "\(bad)") { try SeccompProfile.decode(bad) }
        }
    }

    @Test func capabilitiesAsDocker() throws {
        let host = allCaps.subtracting(["CAP_SYS_RESOURCE"])
        func caps(_ add: [String], _ drop: [String], privileged: Bool = false) throws -> [String] {
            try Confinement.capabilities(add: add, drop: drop, privileged: privileged, hostBounding: host)
        }
        #expect(try caps([], []) == SpecBuilder.defaultCapabilities)
        #expect(try caps(["sys_admin"], ["CHOWN"]) == (SpecBuilder.defaultCapabilities.filter { $0 != "CAP_CHOWN" } + ["CAP_SYS_ADMIN"]))
        #expect(try caps(["NET_ADMIN"], ["ALL"]) == ["CAP_NET_ADMIN"])
        #expect(Set(try caps(["ALL"], ["CAP_MKNOD"])) == host.subtracting(["CAP_MKNOD"]))
        #expect(Set(try caps([], [], privileged: true)) == host)
        #expect(try (caps(["CHOWN"], ["CHOWN"]).filter { $0 == "CAP_CHOWN" }.count) == 1)
        #expect(throws: (any Error).self) { try caps(["SYS_RESOURCE"], []) }
        #expect(throws: (any Error).self) { try caps(["CAP_BOGUS"], []) }
    }

    @Test func optionsIntoTheSpec() throws {
        var h = HostConfig()
        h.SecurityOpt = ["no-new-privileges=true", "apparmor=unconfined", "label=disable"]
        h.PidMode = "host"
        h.IpcMode = "host"
        h.CgroupnsMode = "host"
        h.UsernsMode = "host"
        h.DeviceCgroupRules = ["c 1:11 rw"]
        let c = try Confinement.from(h, hostBounding: allCaps, cgroupLayout: v1)
        var spec = Spec.defaultSpec(terminal: false)
        c.apply(to: &spec)
        #expect(spec.process?.noNewPrivileges == true)
        #expect(spec.linux?.seccomp != nil)
        #expect(Set(spec.linux?.namespaces?.map(\.type) ?? []) == ["network", "uts", "mount"])
        #expect((spec.mounts?.first { $0.destination == "/dev/shm" }?.source) == "/dev/shm")
        #expect(spec.linux?.resources?.devices?.last == Spec.DeviceRule(allow: true, type: "c", major: 1, minor: 11, access: "rw"))

        var u = HostConfig()
        u.SecurityOpt = ["seccomp=unconfined", "no-new-privileges:false"]
        #expect(try Confinement.from(u, hostBounding: allCaps, cgroupLayout: v1).seccomp == nil)
        var p = HostConfig()
        p.Privileged = true
        p.SecurityOpt = ["seccomp={\"defaultAction\": \"SCMP_ACT_ERRNO\"}"]
        let priv = try Confinement.from(p, hostBounding: allCaps, cgroupLayout: v1)
        #expect(priv.seccomp == nil)
        #expect(!priv.devices.isEmpty)

        var d = HostConfig()
        d.Devices = [DeviceMapping(PathOnHost: "/dev/null", PathInContainer: "/dev/n2", CgroupPermissions: "r")]
        let dev = try Confinement.from(d, hostBounding: allCaps, cgroupLayout: v1)
        #expect(dev.devices == [Spec.Device(path: "/dev/n2", type: "c", major: 1, minor: 3, fileMode: dev.devices.first?.fileMode, uid: 0, gid: 0)])
        #expect(dev.deviceRules == [Spec.DeviceRule(allow: true, type: "c", major: 1, minor: 3, access: "r")])
        let v2 = CgroupLayout(v1: [], unified: "/sys/fs/cgroup")
        #expect(throws: (any Error).self) { try Confinement.from(d, hostBounding: allCaps, cgroupLayout: v2) }

        for (key, value) in [("PidMode", "container:x"), ("IpcMode", "container:x"), ("UsernsMode", "private"), ("CgroupnsMode", "x")] {
            var b = HostConfig()
            switch key {
            case "PidMode": b.PidMode = value
            case "IpcMode": b.IpcMode = value
            case "UsernsMode": b.UsernsMode = value
            default: b.CgroupnsMode = value
            }
            #expect(throws: (any Error).self, "\(key)") { try Confinement.from(b, hostBounding: allCaps, cgroupLayout: v1) }
        }
        for opt in ["apparmor=docker-default", "label=level:s0", "seccomp=/x.json", "bogus=1", "no-new-privileges=maybe", "nope"] {
            var b = HostConfig()
            b.SecurityOpt = [opt]
            #expect(throws: (any Error).self, "\(opt)") { try Confinement.from(b, hostBounding: allCaps, cgroupLayout: v1) }
        }
    }
}
