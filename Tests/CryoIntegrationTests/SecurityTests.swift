// The security settings of config.json, observed from inside the container (/proc/self/status,
// `id`, `ulimit`, failing syscalls): capabilities, noNewPrivileges, user (uid, gid,
// additionalGids, umask), rlimits, seccomp, masked and read-only paths, a read-only rootfs,
// oomScoreAdj. Processes started with `exec` get the same settings.

import Foundation
import CryoTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Helpers

/// Capability numbers (linux/capability.h) for the names these tests use.
let capNumbers: [String: Int] = [
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7,
    "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21, "CAP_AUDIT_WRITE": 29,
]

/// The /proc/<pid>/status hex mask of a capability set.
func capMask(_ names: [String]) -> String {
    let v = names.reduce(UInt64(0)) { $0 | (UInt64(1) << UInt64(capNumbers[$1]!)) }
    let hex = String(v, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

/// "Key:\tvalue" lines of /proc/self/status output → [Key: value].
func statusFields(_ text: String) -> [String: String] {
    var out: [String: String] = [:]
    for line in text.split(separator: "\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        out[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return out
}

/// "key=value" lines printed by a test script → [key: value].
func markers(_ text: String) -> [String: String] {
    var out: [String: String] = [:]
    for line in text.split(separator: "\n") {
        guard let eq = line.firstIndex(of: "=") else { continue }
        out[String(line[..<eq])] = String(line[line.index(after: eq)...])
    }
    return out
}

extension TestEnv {
    /// `run` (foreground) of `sh -c script` in a fresh bundle edited by `edit`; the result holds
    /// the container's stdout and stderr.
    func runScript(_ tag: String, _ script: String, edit: (inout JSONObject) throws -> Void = { _ in }) throws -> CommandResult {
        let bundle = try makeBundle("bundle-\(tag)", args: ["sh", "-c", script], edit: edit)
        return try cryo(["run", "--bundle", bundle.path, newID(tag)], timeout: 30)
    }

    /// A started `sleep` container with `edit` applied, for exec checks.
    func startSleeper(_ tag: String, edit: (inout JSONObject) throws -> Void = { _ in }) throws -> TestContainer {
        let bundle = try makeBundle("bundle-\(tag)", args: ["sleep", "1000"], edit: edit)
        return try startContainer(bundle, id: newID(tag))
    }
}

let statusScript = "grep -E '^(Cap|NoNewPrivs|Seccomp|Uid|Gid|Groups)' /proc/self/status"

extension CryoIntegration {
    @Suite("Security settings")
    struct Security {
        // MARK: capabilities

        @Test("capabilities: a root process with only CAP_KILL has exactly that (CapEff/CapPrm/CapBnd), and chown is refused")
        func onlyCapKill() throws {
            try requireRuntime()
            try withEnv { env in
                let edit: (inout JSONObject) -> Void = { c in
                    c[path: ["process", "capabilities"]] = ["bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                                                            "permitted": ["CAP_KILL"], "inheritable": [String](), "ambient": [String]()]
                }
                let r = try env.runScript("capkill", statusScript + "; touch /dev/shm/f; chown 1:1 /dev/shm/f && echo chown=ok || echo chown=refused", edit: edit)
                #expect(r.status == 0, "\(r)")
                let st = statusFields(r.stdout)
                let want = capMask(["CAP_KILL"])
                #expect(st["CapEff"] == want, "CapEff \(st["CapEff"] ?? "missing"), want \(want)\n\(r.stdout)")
                #expect(st["CapPrm"] == want, "CapPrm \(st["CapPrm"] ?? "missing"), want \(want)")
                #expect(st["CapBnd"] == want, "CapBnd \(st["CapBnd"] ?? "missing"), want \(want)")
                #expect(st["CapInh"] == capMask([]), "CapInh \(st["CapInh"] ?? "missing")")
                #expect(st["CapAmb"] == capMask([]), "CapAmb \(st["CapAmb"] ?? "missing")")
                #expect(markers(r.stdout)["chown"] == "refused", "chown worked without CAP_CHOWN: \(r)")

                // exec'd processes get the container's capabilities too.
                let c = try env.startSleeper("capkill-exec", edit: edit)
                let e = try env.exec(c.id, ["sh", "-c", statusScript])
                let est = statusFields(e.stdout)
                #expect(est["CapEff"] == want && est["CapBnd"] == want && est["CapPrm"] == want, "exec: \(e)")
            }
        }

        @Test("capabilities: several sets as configured (bounding wider than effective/permitted)")
        func capabilitySets() throws {
            try requireRuntime()
            try withEnv { env in
                let bounding = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]
                let prm = ["CAP_CHOWN", "CAP_KILL"]
                let r = try env.runScript("capsets", statusScript + "; touch /dev/shm/f; chown 1:1 /dev/shm/f && echo chown=ok || echo chown=refused") { c in
                    c[path: ["process", "user"]] = ["uid": 1000, "gid": 1000]
                    c[path: ["process", "capabilities"]] = ["bounding": bounding, "effective": prm, "permitted": prm,
                                                            "inheritable": prm, "ambient": prm]
                }
                #expect(r.status == 0, "\(r)")
                let st = statusFields(r.stdout)
                // A non-root process keeps across execve only what is ambient (inheritable ∩ permitted).
                #expect(st["CapBnd"] == capMask(bounding), "CapBnd \(st["CapBnd"] ?? "missing"), want \(capMask(bounding))")
                #expect(st["CapAmb"] == capMask(prm), "CapAmb \(st["CapAmb"] ?? "missing"), want \(capMask(prm))")
                #expect(st["CapEff"] == capMask(prm), "CapEff \(st["CapEff"] ?? "missing"), want \(capMask(prm))")
                #expect(st["CapPrm"] == capMask(prm), "CapPrm \(st["CapPrm"] ?? "missing"), want \(capMask(prm))")
                #expect(st["CapInh"] == capMask(prm), "CapInh \(st["CapInh"] ?? "missing"), want \(capMask(prm))")
                #expect(markers(r.stdout)["chown"] == "ok", "uid 1000 with ambient CAP_CHOWN could not chown: \(r)")
            }
        }

        // MARK: no_new_privs

        @Test("noNewPrivileges true → NoNewPrivs: 1 (also for exec); false → 0")
        func noNewPrivileges() throws {
            try requireRuntime()
            try withEnv { env in
                let on = try env.runScript("nnp-on", statusScript) { c in c[path: ["process", "noNewPrivileges"]] = true }
                #expect(on.status == 0, "\(on)")
                #expect(statusFields(on.stdout)["NoNewPrivs"] == "1", "\(on)")
                let off = try env.runScript("nnp-off", statusScript) { c in c[path: ["process", "noNewPrivileges"]] = false }
                #expect(off.status == 0, "\(off)")
                #expect(statusFields(off.stdout)["NoNewPrivs"] == "0", "\(off)")

                let c = try env.startSleeper("nnp-exec") { c in c[path: ["process", "noNewPrivileges"]] = true }
                let e = try env.exec(c.id, ["sh", "-c", statusScript])
                #expect(statusFields(e.stdout)["NoNewPrivs"] == "1", "exec: \(e)")
            }
        }

        // MARK: user

        @Test("user: uid, gid, additionalGids and umask are applied (id, /proc/self/status, new files)")
        func userIDs() throws {
            try requireRuntime()
            try withEnv { env in
                let edit: (inout JSONObject) -> Void = { c in
                    c[path: ["process", "user"]] = ["uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027]
                }
                let r = try env.runScript("user", statusScript + "; id; echo umask=$(umask); touch /dev/shm/f; echo owner=$(stat -c %u:%g:%a /dev/shm/f)", edit: edit)
                #expect(r.status == 0, "\(r)")
                #expect(r.stdout.contains("uid=1000 gid=1001 groups=10,20"), "id: \(r.stdout)")
                let st = statusFields(r.stdout)
                #expect(st["Uid"]?.split(whereSeparator: { $0 == "\t" || $0 == " " }) == ["1000", "1000", "1000", "1000"], "Uid: \(st["Uid"] ?? "missing")")
                #expect(st["Gid"]?.split(whereSeparator: { $0 == "\t" || $0 == " " }) == ["1001", "1001", "1001", "1001"], "Gid: \(st["Gid"] ?? "missing")")
                #expect(st["Groups"]?.split(separator: " ") == ["10", "20"], "Groups: \(st["Groups"] ?? "missing")")
                let m = markers(r.stdout)
                #expect(m["umask"] == "0027", "umask: \(m["umask"] ?? "missing")")
                #expect(m["owner"] == "1000:1001:640", "a new file: \(m["owner"] ?? "missing") (want 1000:1001, mode 640 from umask 027)")

                let c = try env.startSleeper("user-exec", edit: edit)
                let e = try env.exec(c.id, ["id"])
                #expect(e.stdout.contains("uid=1000 gid=1001 groups=10,20"), "exec: \(e)")
            }
        }

        // MARK: rlimits

        @Test("rlimits: RLIMIT_NOFILE soft/hard as configured (ulimit -n / -Hn), also for exec")
        func rlimits() throws {
            try requireRuntime()
            try withEnv { env in
                let edit: (inout JSONObject) -> Void = { c in
                    c[path: ["process", "rlimits"]] = [["type": "RLIMIT_NOFILE", "soft": 333, "hard": 444],
                                                       ["type": "RLIMIT_NPROC", "soft": 555, "hard": 666]]
                }
                let r = try env.runScript("rlimit", "echo nofile=$(ulimit -n); echo nofile_hard=$(ulimit -Hn); echo nproc=$(ulimit -u); echo nproc_hard=$(ulimit -Hu)", edit: edit)
                #expect(r.status == 0, "\(r)")
                let m = markers(r.stdout)
                #expect(m["nofile"] == "333" && m["nofile_hard"] == "444", "\(r.stdout)")
                #expect(m["nproc"] == "555" && m["nproc_hard"] == "666", "\(r.stdout)")

                let c = try env.startSleeper("rlimit-exec", edit: edit)
                let e = try env.exec(c.id, ["sh", "-c", "echo nofile=$(ulimit -n)"])
                #expect(markers(e.stdout)["nofile"] == "333", "exec: \(e)")
            }
        }

        // MARK: seccomp

        @Test("seccomp: default ALLOW with mkdir → SCMP_ACT_ERRNO: mkdir fails with EPERM, everything else works, errnoRet is honoured",
              arguments: [true, false])
        func seccompDenyMkdir(noNewPrivileges: Bool) throws {
            try requireRuntime()
            try withEnv { env in
                let edit: (inout JSONObject) -> Void = { c in
                    c[path: ["process", "noNewPrivileges"]] = noNewPrivileges
                    c[path: ["linux", "seccomp"]] = [
                        "defaultAction": "SCMP_ACT_ALLOW",
                        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
                        "syscalls": [
                            ["names": ["mkdir"], "action": "SCMP_ACT_ERRNO"],
                            ["names": ["symlink", "symlinkat"], "action": "SCMP_ACT_ERRNO", "errnoRet": Int(ENOSPC)],
                        ],
                    ]
                }
                let script = """
                    grep -E '^(Seccomp|NoNewPrivs)' /proc/self/status
                    mkdir /dev/shm/d 2>&1; echo mkdir=$?
                    ln -s x /dev/shm/l 2>&1; echo ln=$?
                    echo data > /dev/shm/f && echo write=ok
                    ls / >/dev/null && echo ls=ok
                    rm /dev/shm/f && echo rm=ok
                    """
                let r = try env.runScript("seccomp", script, edit: edit)
                #expect(r.status == 0, "\(r)")
                let m = markers(r.stdout)
                #expect(statusFields(r.stdout)["Seccomp"] == "2", "no seccomp filter: \(r.stdout)")
                #expect(m["mkdir"] != "0", "mkdir was not denied: \(r.stdout)")
                #expect(r.stdout.contains("Operation not permitted"), "mkdir should fail with EPERM: \(r.stdout)")
                #expect(m["ln"] != "0" && r.stdout.contains("No space left on device"), "symlink should fail with errnoRet ENOSPC: \(r.stdout)")
                #expect(m["write"] == "ok" && m["ls"] == "ok" && m["rm"] == "ok", "other syscalls must work: \(r)")
                // libseccomp sets no_new_privs when loading a filter unless told not to
                // (SCMP_FLTATR_CTL_NNP); runc 1.1.5 gives NoNewPrivs 0 here with noNewPrivileges false.
                #expect(statusFields(r.stdout)["NoNewPrivs"] == (noNewPrivileges ? "1" : "0"),
                        "noNewPrivileges \(noNewPrivileges) with a seccomp profile: \(r.stdout)")

                let c = try env.startSleeper("seccomp-exec", edit: edit)
                let e = try env.exec(c.id, ["mkdir", "/dev/shm/e"])
                #expect(e.status != 0 && e.stderr.contains("Operation not permitted"), "exec'd processes must get the filter too: \(e)")
                let ok = try env.exec(c.id, ["sh", "-c", "echo fine > /dev/shm/g && cat /dev/shm/g"])
                #expect(ok.status == 0 && ok.stdout == "fine\n", "\(ok)")
            }
        }

        // MARK: masked and read-only paths

        @Test("maskedPaths: masked files read empty, masked directories are empty (kernel files and files of the rootfs)")
        func maskedPaths() throws {
            try requireRuntime()
            try withEnv { env in
                let kernelFiles = ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats"]
                    .filter { FileManager.default.fileExists(atPath: $0) }
                let kernelDirs = ["/proc/acpi", "/proc/scsi", "/sys/firmware"].filter {
                    ((try? FileManager.default.contentsOfDirectory(atPath: $0)) ?? []).count > 0
                }
                try #require(!kernelFiles.isEmpty, "none of the usual masked /proc files exists on this kernel")
                var script = ""
                for f in kernelFiles + ["/etc/secret"] { script += "echo 'size:\(f)='$(cat \(f) | wc -c)\n" }
                for d in kernelDirs + ["/opt/secretdir"] { script += "echo 'entries:\(d)='$(ls -A \(d) | wc -l)\n" }
                script += "echo 'visible='$(cat /etc/visible)\n"
                let bundle = try env.makeBundle("bundle-masked", args: ["sh", "-c", script]) { c in
                    c[path: ["linux", "maskedPaths"]] = kernelFiles + kernelDirs + ["/etc/secret", "/opt/secretdir"]
                }
                try writeFile(bundle.rootfs + "/etc/secret", "top secret\n")
                try writeFile(bundle.rootfs + "/etc/visible", "not masked\n")
                try FileManager.default.createDirectory(atPath: bundle.rootfs + "/opt/secretdir", withIntermediateDirectories: true)
                try writeFile(bundle.rootfs + "/opt/secretdir/file", "hidden\n")
                let r = try env.cryo(["run", "--bundle", bundle.path, env.newID("masked")], timeout: 30)
                #expect(r.status == 0, "\(r)")
                let m = markers(r.stdout)
                for f in kernelFiles + ["/etc/secret"] {
                    #expect(m["size:\(f)"] == "0", "masked file \(f) is readable in the container: \(m["size:\(f)"] ?? "missing") bytes\n\(r)")
                }
                for d in kernelDirs + ["/opt/secretdir"] {
                    #expect(m["entries:\(d)"] == "0", "masked directory \(d) shows \(m["entries:\(d)"] ?? "?") entries\n\(r)")
                }
                #expect(m["visible"] == "not masked", "\(r)")
                #expect(readFile(bundle.rootfs + "/etc/secret") == "top secret\n", "masking changed the rootfs file")
            }
        }

        @Test("readonlyPaths: /proc/sys and friends are read-only mounts; the rest of /proc stays writable")
        func readonlyPaths() throws {
            try requireRuntime()
            try withEnv { env in
                let ro = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
                let script = """
                    echo 1 > /proc/sys/kernel/domainname; echo sysctl=$?
                    echo h > /proc/sysrq-trigger; echo sysrq=$?
                    echo 100 > /proc/self/oom_score_adj && echo oom=ok
                    cat /proc/self/mountinfo
                    """
                let r = try env.runScript("ro", script) { c in c[path: ["linux", "readonlyPaths"]] = ro }
                #expect(r.status == 0, "\(r)")
                let m = markers(r.stdout)
                #expect(m["sysctl"] != nil && m["sysctl"] != "0", "/proc/sys is writable: \(r)")
                #expect(r.output.contains("Read-only file system"), "\(r.stderr)")
                #expect(m["sysrq"] != nil && m["sysrq"] != "0", "/proc/sysrq-trigger is writable: \(r)")
                #expect(m["oom"] == "ok", "the rest of /proc became read-only: \(r)")
                for p in ro where FileManager.default.fileExists(atPath: p) {
                    let line = r.stdout.split(separator: "\n").last { $0.split(separator: " ").count > 5 && $0.split(separator: " ")[4] == p }
                    let opts = line.map { $0.split(separator: " ")[5].split(separator: ",") } ?? []
                    #expect(opts.contains("ro"), "\(p) is not mounted read-only in the container: \(line.map(String.init) ?? "no mount")")
                }
            }
        }

        // MARK: read-only rootfs

        @Test("root.readonly: writing to / fails (EROFS) while tmpfs mounts stay writable; readonly false allows it")
        func readonlyRootfs() throws {
            try requireRuntime()
            try withEnv { env in
                let script = "touch /newfile 2>&1; echo touch=$?; touch /dev/shm/x && echo shm=ok"
                let r = try env.runScript("rootro", script) { c in c[path: ["root", "readonly"]] = true }
                #expect(r.status == 0, "\(r)")
                #expect(markers(r.stdout)["touch"] != "0", "touch / succeeded on a read-only rootfs: \(r)")
                #expect(r.stdout.contains("Read-only file system"), "\(r)")
                #expect(markers(r.stdout)["shm"] == "ok", "\(r)")
                #expect(!FileManager.default.fileExists(atPath: env.path("bundle-rootro/rootfs/newfile")))

                let w = try env.runScript("rootrw", script) { c in c[path: ["root", "readonly"]] = false }
                #expect(markers(w.stdout)["touch"] == "0", "touch / failed on a writable rootfs: \(w)")
                #expect(FileManager.default.fileExists(atPath: env.path("bundle-rootrw/rootfs/newfile")), "the file is not in the bundle's rootfs")
            }
        }

        // MARK: oomScoreAdj

        @Test("process.oomScoreAdj is visible in /proc/self/oom_score_adj (and on the host for the init)")
        func oomScoreAdj() throws {
            try requireRuntime()
            try withEnv { env in
                let r = try env.runScript("oom", "echo oom=$(cat /proc/self/oom_score_adj)") { c in c[path: ["process", "oomScoreAdj"]] = 123 }
                #expect(r.status == 0, "\(r)")
                #expect(markers(r.stdout)["oom"] == "123", "\(r)")

                // Positive: lowering it needs CAP_SYS_RESOURCE, which this machine does not have.
                let c = try env.startSleeper("oom-host") { c in c[path: ["process", "oomScoreAdj"]] = 321 }
                let pid = try #require(try env.initPid(c.id))
                #expect(readFile("/proc/\(pid)/oom_score_adj")?.trimmingCharacters(in: .whitespacesAndNewlines) == "321")
            }
        }

        // MARK: after checkpoint/restore

        @Test("the security settings of a container survive checkpoint and restore (caps, no_new_privs, seccomp, groups, rlimits, oom_score_adj, masked and read-only mounts)")
        func settingsSurviveRestore() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let bundle = try env.makeBundle("bundle-sec-cr", args: ["sleep", "1000"]) { c in
                    c[path: ["process", "capabilities"]] = ["bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]]
                    c[path: ["process", "noNewPrivileges"]] = true
                    c[path: ["process", "user"]] = ["uid": 0, "gid": 0, "additionalGids": [10, 20]]
                    c[path: ["process", "rlimits"]] = [["type": "RLIMIT_NOFILE", "soft": 333, "hard": 444]]
                    c[path: ["process", "oomScoreAdj"]] = 200
                    c[path: ["root", "readonly"]] = true
                    c[path: ["linux", "seccomp"]] = ["defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                                                     "syscalls": [["names": ["mkdir"], "action": "SCMP_ACT_ERRNO"]]]
                    var masked = c[path: ["linux", "maskedPaths"]] as? [String] ?? []
                    masked.append("/etc/secret")
                    c[path: ["linux", "maskedPaths"]] = masked
                }
                try writeFile(bundle.rootfs + "/etc/secret", "top secret\n")
                let c = try env.startContainer(bundle, id: env.newID("sec-cr"))

                /// What the host sees of the container's init.
                func observe(_ pid: Int32) -> [String: String] {
                    var o: [String: String] = [:]
                    let st = statusFields(readFile("/proc/\(pid)/status") ?? "")
                    for k in ["CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb", "NoNewPrivs", "Seccomp", "Groups", "Uid"] { o[k] = st[k] ?? "missing" }
                    o["oom_score_adj"] = readFile("/proc/\(pid)/oom_score_adj")?.trimmingCharacters(in: .whitespacesAndNewlines)
                    o["nofile"] = readFile("/proc/\(pid)/limits")?.split(separator: "\n").first { $0.hasPrefix("Max open files") }
                        .map { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).prefix(2).joined(separator: " ") }
                    let mounts = (readFile("/proc/\(pid)/mountinfo") ?? "").split(separator: "\n").map { $0.split(separator: " ") }
                    for mp in ["/", "/etc/secret", "/proc/sys"] {
                        let m = mounts.last { $0.count > 5 && $0[4] == Substring(mp) }
                        o["mount \(mp)"] = m.map { $0[5].split(separator: ",").contains("ro") ? "ro" : "rw" } ?? "no mount"
                    }
                    return o
                }
                let pid1 = try #require(try env.initPid(c.id))
                let before = observe(pid1)
                #expect(before["CapEff"] == capMask(["CAP_KILL"]) && before["NoNewPrivs"] == "1" && before["Seccomp"] == "2", "\(before)")
                #expect(before["mount /"] == "ro" && before["mount /proc/sys"] == "ro" && before["mount /etc/secret"] != "no mount", "\(before)")

                let image = env.path("image")
                try env.checkpointOK(c.id, image: image)
                let r = try env.restoreOK(env.newID("sec-cr-r"), image: image, bundle: c.bundle)
                let pid2 = try #require(try env.initPid(r.id))
                let after = observe(pid2)
                for (k, v) in before.sorted(by: { $0.key < $1.key }) {
                    #expect(after[k] == v, "\(k) after restore: \(after[k] ?? "nil"), before: \(v)")
                }
                let cat = try env.exec(r.id, ["cat", "/etc/secret"])
                #expect(cat.status == 0 && cat.stdout.isEmpty, "masked file readable after restore: \(cat)")
                let touch = try env.exec(r.id, ["touch", "/newfile"])
                #expect(touch.status != 0 && touch.stderr.contains("Read-only file system"), "rootfs writable after restore: \(touch)")
            }
        }
    }
}
