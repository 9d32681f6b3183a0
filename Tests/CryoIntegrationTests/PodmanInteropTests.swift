// podman 4.3 (through conmon) driving cryo-runtime with `--runtime <abs path>`:
// run -d, container checkpoint, container restore (the counter continues in `podman logs`),
// checkpoint --export / restore --import --name, repeated checkpoints into podman's one
// checkpoint directory, tty containers (run -dt, exec -t), exec, rm -f, and that conmon exits
// and neither runtime state nor cgroups are left behind.
//
// Podman is isolated from any podman of the machine's user: --root, --runroot and --tmpdir under
// the test's temp dir, a private CONTAINERS_CONF (file locks instead of the shared
// /dev/shm/libpod_lock, a private network config dir) and a private CONTAINERS_STORAGE_CONF (vfs);
// `podman import` runs with a private /var/lib/containers (containers/image's blob-info cache).
// What podman needs on this machine (see ../shared/facts/runtime-callers.md): cgroupfs, the file
// events backend, `--network none` (never the default bridge and its 10.88.x subnet) and ulimits
// at or below the machine's (no CAP_SYS_RESOURCE). Containers go under a cgroup parent of their
// own, which cleanup removes.
//
// The runtime is cryo-runtime at its default state root (podman cannot pass `--root` to the
// runtime reliably: conmon's exit command, `podman container cleanup`, drops --runtime-flag);
// container ids are podman's random 64-hex ids, and cleanup deletes whatever state a test left
// there. `runtime_supports_json` names cryo-runtime, so podman passes
// `--log <runroot>/…/oci-log --log-format=json` as it does for runc, and reports the runtime's
// error messages from that log.
//
// podman is started with posix_spawn, not Foundation's Process: see PodmanEnv.run.

import Foundation
import CryoTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A private podman: its directories, configuration and environment, and cleanup.
// @unchecked: the mutable state is guarded by `lock` (NSLock, which the checker cannot see).
final class PodmanEnv: @unchecked Sendable {
    let env: TestEnv
    let base: String
    let podman: String
    /// Relative cgroup path (in every hierarchy) under which podman puts containers and conmon.
    let cgroupParent: String
    let environment: [String: String]
    private let lock = NSLock()
    private var ids: Set<String> = []
    private var conmonPids: Set<Int32> = []
    private var counter = 0

    init(_ env: TestEnv) throws {
        self.env = env
        base = env.path("podman")
        podman = findExecutable("podman") ?? "/usr/bin/podman"
        cgroupParent = "cryo-it-podman-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        env.trackCgroup(cgroupParent)
        let fm = FileManager.default
        for d in ["root", "runroot", "tmp", "net", "out"] {
            try fm.createDirectory(atPath: base + "/" + d, withIntermediateDirectories: true)
        }
        let runtimeName = URL(fileURLWithPath: Harness.binary).lastPathComponent
        try writeFile(base + "/containers.conf", """
            [containers]
            default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
            netns = "none"

            [network]
            network_config_dir = "\(base)/net"
            default_subnet = "198.18.0.0/24"

            [engine]
            cgroup_manager = "cgroupfs"
            events_logger = "file"
            lock_type = "file"
            runtime_supports_json = ["\(runtimeName)"]

            """)
        try writeFile(base + "/storage.conf", """
            [storage]
            driver = "vfs"
            graphroot = "\(base)/root"
            runroot = "\(base)/runroot"

            """)
        var e = ProcessInfo.processInfo.environment
        e["CONTAINERS_CONF"] = base + "/containers.conf"
        e["CONTAINERS_STORAGE_CONF"] = base + "/storage.conf"
        e["PATH"] = (e["PATH"].map { $0 + ":" } ?? "") + "/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"
        environment = e
    }

    var globalArgs: [String] {
        ["--root", base + "/root", "--runroot", base + "/runroot", "--tmpdir", base + "/tmp",
         "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
         "--runtime", Harness.binary]
    }

    /// Runs podman to completion. Not through Foundation's Process: that leaves the child a
    /// socket whose closing is how it notices the exit, and conmon (which podman leaves running)
    /// would inherit it, so `podman run -d` would never seem to finish. Here the child gets only
    /// 0-2 (stdin /dev/null, stdout/stderr to files: conmon must not hold our pipes either).
    ///
    /// `privateVarLib`: run podman in a mount namespace of its own with a tmpfs over
    /// /var/lib/containers. Image copies (`podman import`) write containers/image's blob-info
    /// cache to /var/lib/containers/cache whatever --root says; nothing else needs that.
    func run(_ args: [String], timeout: Double = 90, privateVarLib: Bool = false) throws -> CommandResult {
        let n = lock.withLock { counter += 1; return counter }
        let out = base + "/out/\(n).out", err = base + "/out/\(n).err"
        var exe = podman, argv = globalArgs + args
        if privateVarLib {
            let script = "if [ -d /var/lib/containers ]; then mount -t tmpfs -o mode=0700 tmpfs /var/lib/containers; "
                + "else mount -t tmpfs -o mode=0755 tmpfs /var/lib; fi && exec \"$@\""
            exe = findExecutable("unshare") ?? "/usr/bin/unshare"
            argv = ["--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh", podman] + argv
        }
        let pid = try spawnWithoutInheritedFDs(exe, argv, environment: environment, stdout: out, stderr: err)
        let status = waitForChild(pid, timeout: timeout)
        return CommandResult(command: ["podman"] + args, status: status ?? -1, stdout: readFile(out) ?? "",
                             stderr: readFile(err) ?? "", timedOut: status == nil)
    }

    @discardableResult
    func ok(_ args: [String], timeout: Double = 90, privateVarLib: Bool = false, _ context: @autoclosure () -> String = "") throws -> CommandResult {
        let r = try run(args, timeout: timeout, privateVarLib: privateVarLib)
        guard r.succeeded else { throw HarnessError("podman failed: \(r)\(context())") }
        return r
    }

    func track(_ id: String) { _ = lock.withLock { ids.insert(id) } }

    /// `podman run -d` with the flags this machine needs. `image` nil: a private copy of the
    /// busybox rootfs through --rootfs. Returns the container id.
    func runDetached(name: String, image: String? = nil, tty: Bool = false, args: [String]) throws -> String {
        var a = ["run", "-d", "--name", name, "--network", "none", "--cgroup-parent", "/" + cgroupParent,
                 "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
        if tty { a.append("-t") }
        if let image {
            a.append(image)
        } else {
            a += ["--rootfs", try rootfs()]
        }
        let r = try ok(a + args)
        let id = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard id.count == 64 else { throw HarnessError("podman run printed no container id: \(r)") }
        track(id)
        if let c = try? conmonPid(id) { _ = lock.withLock { conmonPids.insert(c) } }
        return id
    }

    private var rootfsCopy: String?
    /// A copy of the busybox rootfs for --rootfs (podman adds mountpoints to it).
    func rootfs() throws -> String {
        if let r = lock.withLock({ rootfsCopy }) { return r }
        let dst = base + "/rootfs-\(lock.withLock { counter += 1; return counter })"
        try Tool.check("/bin/cp", ["-a", try Fixtures.busyboxRootfs.get(), dst])
        lock.withLock { rootfsCopy = dst }
        return dst
    }

    /// Imports the busybox rootfs as image `name` (`podman import` of a tarball).
    func importImage(_ name: String) throws {
        let tar = base + "/busybox-rootfs.tar"
        try Tool.check("/bin/tar", ["-C", try Fixtures.busyboxRootfs.get(), "-cf", tar, "."])
        try ok(["import", tar, name], privateVarLib: true)
    }

    func inspect(_ nameOrID: String) throws -> JSONObject {
        let r = try ok(["container", "inspect", nameOrID])
        guard let arr = parseJSON(r.stdout) as? [JSONObject], let first = arr.first else {
            throw HarnessError("podman inspect: not a JSON array: \(r)")
        }
        return first
    }

    func state(_ nameOrID: String) throws -> JSONObject {
        try inspect(nameOrID)["State"] as? JSONObject ?? [:]
    }

    func conmonPid(_ nameOrID: String) throws -> Int32? {
        (try state(nameOrID)["ConmonPid"] as? NSNumber)?.int32Value
    }

    /// `podman logs` (stdout), with the terminal's \r removed.
    func logs(_ nameOrID: String) throws -> String {
        try ok(["logs", nameOrID]).stdout.replacingOccurrences(of: "\r", with: "")
    }

    /// Polls `podman logs` until `condition` holds.
    @discardableResult
    func waitForLogs(_ nameOrID: String, timeout: Double = 15, _ condition: (String) -> Bool) -> Bool {
        waitUntil(timeout: timeout, interval: 0.1) { condition((try? self.logs(nameOrID)) ?? "") }
    }

    func userdata(_ id: String) -> String { base + "/root/vfs-containers/\(id)/userdata" }

    /// What to look at when podman's checkpoint or restore fails: CRIU's logs in the container's
    /// userdata dir (podman passes it as --work-path), the runtime's --log file, podman's events.
    func diagnostics(_ id: String) -> String {
        var s = ""
        for f in ["dump.log", "restore.log"] {
            guard let t = readFile(userdata(id) + "/" + f) else { continue }
            let lines = t.split(separator: "\n")
            let errors = lines.filter { $0.contains("Error") || $0.contains("Warn") }.suffix(15)
            s += "\n--- \(userdata(id))/\(f): \(errors.isEmpty ? "last lines" : "Error/Warn lines")\n"
            s += (errors.isEmpty ? Array(lines.suffix(10)) : Array(errors)).joined(separator: "\n")
        }
        let ociLog = base + "/runroot/vfs-containers/\(id)/userdata/oci-log"
        if let t = readFile(ociLog), !t.isEmpty { s += "\n--- runtime log \(ociLog):\n" + t.split(separator: "\n").suffix(10).joined(separator: "\n") }
        if let ev = readFile(base + "/tmp/events/events.log") {
            s += "\n--- podman events (last 6):\n" + ev.split(separator: "\n").suffix(6).joined(separator: "\n")
        }
        return s
    }

    /// Whether cryo-runtime (at its default root, where podman's calls put it) knows `id`.
    static func runtimeState(_ id: String) -> (JSONObject?, CommandResult?) {
        guard let r = try? Tool.run(Harness.binary, ["state", id], timeout: 30) else { return (nil, nil) }
        return (r.succeeded ? parseJSON(r.stdout) as? JSONObject : nil, r)
    }

    /// Removes every container (podman rm -f), then whatever podman or the runtime left behind:
    /// runtime state at its default root, conmon processes, cgroups under our parent.
    func cleanup() {
        var all = lock.withLock { ids }
        if let r = try? run(["ps", "-a", "--no-trunc", "--format", "{{.ID}}"], timeout: 30), r.succeeded {
            for l in r.stdout.split(separator: "\n") where l.count == 64 { all.insert(String(l)) }
        }
        for id in all {
            if let c = try? conmonPid(id) { _ = lock.withLock { conmonPids.insert(c) } }
        }
        _ = try? run(["rm", "-a", "-f", "-t", "0"], timeout: 60)
        for id in all where PodmanEnv.runtimeState(id).0 != nil {
            _ = try? Tool.run(Harness.binary, ["delete", "--force", id], timeout: 30)
        }
        // conmon and podman's cleanup processes carry our base dir on their command line.
        var ours: [Int32] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), pid != getpid(),
                  let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { continue }
            if String(decoding: cmd, as: UTF8.self).contains(base + "/") { ours.append(pid) }
        }
        for pid in ours { kill(pid, SIGKILL) }
        // A dead conmon stays in its cgroup until PID 1 reaps it (about once a second here).
        let pids = lock.withLock { conmonPids }.union(ours)
        waitUntil(timeout: 5, interval: 0.05) { pids.allSatisfy { !FileManager.default.fileExists(atPath: "/proc/\($0)") } }
        waitUntil(timeout: 5, interval: 0.1) {
            _ = CgroupCleaner.killAndRemove(cgroupParent)
            return CgroupCleaner.dirs(cgroupParent).isEmpty
        }
        if let mi = readFile("/proc/self/mountinfo") {
            for line in mi.split(separator: "\n").reversed() {
                let f = line.split(separator: " ")
                if f.count > 4, f[4].hasPrefix(base + "/") { umount2(String(f[4]), Int32(MNT_DETACH)) }
            }
        }
    }
}

/// posix_spawn of `exe args` with stdin /dev/null, stdout/stderr to (truncated) files and every
/// other descriptor closed; default signal dispositions and an empty signal mask.
func spawnWithoutInheritedFDs(_ exe: String, _ args: [String], environment: [String: String],
                              stdout: String, stderr: String) throws -> pid_t {
    var fa = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&fa)
    defer { posix_spawn_file_actions_destroy(&fa) }
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&fa, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&fa, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addclosefrom_np(&fa, 3)
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var none = sigset_t(), all = sigset_t()
    sigemptyset(&none)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attr, &none)
    posix_spawnattr_setsigdefault(&attr, &all)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let argv = ([exe] + args).map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { for a in argv { free(a) }; for e in envp { free(e) } }
    var pid: pid_t = 0
    let r = posix_spawn(&pid, exe, &fa, &attr, argv, envp)
    guard r == 0 else { throw HarnessError("posix_spawn \(exe): errno \(r)") }
    return pid
}

/// Reaps `pid`: its exit code (128+N when killed by signal N), or nil after `timeout` seconds
/// (then it is killed).
func waitForChild(_ pid: pid_t, timeout: Double) -> Int32? {
    var status: Int32 = 0
    var code: Int32?
    waitUntil(timeout: timeout, interval: 0.005) {
        let r = waitpid(pid, &status, WNOHANG)
        guard r == pid else { return r < 0 && errno != EINTR }   // ECHILD: someone else reaped it
        let sig = status & 0x7f
        code = sig == 0 ? (status >> 8) & 0xff : 128 + sig
        return true
    }
    if code == nil {
        kill(pid, SIGKILL)
        _ = waitpid(pid, &status, 0)
    }
    return code
}

/// Runs `body` with a private podman; its cleanup runs before the TestEnv's.
func withPodman<T>(_ body: (TestEnv, PodmanEnv) throws -> T) throws -> T {
    try withEnv { env in
        let pm = try PodmanEnv(env)
        defer { pm.cleanup() }
        return try body(env, pm)
    }
}

/// Numbers of a counter log through a checkpoint: `log` must be 0, 1, …, `last` and then a
/// continuation that picks up at last+1 (or a little before, when output still in the pipe was
/// dumped and is written again) and counts by one past last+3. A restart from 0 fails.
func expectLogContinues(_ log: String, after last: Int, what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let nums = numbers(in: log)
    guard nums.count > last + 1 else {
        Issue.record("\(what): the log has nothing after the checkpoint (last was \(last)): \(nums.suffix(20))", sourceLocation: sourceLocation)
        return
    }
    let before = Array(nums[0...last])
    #expect(before == Array(0...last), "\(what): the log before the checkpoint is not 0…\(last): \(before.suffix(20))", sourceLocation: sourceLocation)
    let after = Array(nums[(last + 1)...])
    guard let first = after.first else { return }
    #expect(first <= last + 1 && first >= max(0, last - 5), "\(what): after restore the counter went on at \(first), not after \(last)", sourceLocation: sourceLocation)
    #expect(after == Array(first..<(first + after.count)), "\(what): did not count by one after restore: \(after.prefix(20))", sourceLocation: sourceLocation)
    #expect((after.last ?? -1) > last + 3, "\(what): counter did not get past \(last + 3): \(after.suffix(10))", sourceLocation: sourceLocation)
}

extension CryoIntegration {
    @Suite("podman interop")
    struct PodmanInterop {
        @Test("podman run -d → container checkpoint → container restore: the counter continues in podman logs; exec and rm -f work")
        func checkpointRestore() throws {
            try requireRuntimeCRIUAndPodman()
            try withPodman { _, pm in
                let id = try pm.runDetached(name: "counter", args: Scripts.counter())
                try #require(pm.waitForLogs(id) { numbers(in: $0).count >= 5 }, "no counter output in podman logs: \((try? pm.logs(id)) ?? "")\(pm.diagnostics(id))")
                let before = try pm.state(id)
                #expect(before["Running"] as? Bool == true, "\(before)")
                let conmon1 = try #require((before["ConmonPid"] as? NSNumber)?.int32Value)
                let pid1 = try #require((before["Pid"] as? NSNumber)?.int32Value)
                let (rs, rsr) = PodmanEnv.runtimeState(id)
                #expect(rs?["status"] as? String == "running", "podman's container is not a running cryo-runtime container: \(String(describing: rsr))")
                #expect((rs?["pid"] as? NSNumber)?.int32Value == pid1, "runtime pid \(String(describing: rs?["pid"])) vs podman's \(pid1)")

                // --keep: leave dump.log/restore.log in userdata for the post-mortem.
                let cp = try pm.run(["container", "checkpoint", "--keep", id])
                try #require(cp.succeeded, "podman container checkpoint: \(cp)\(pm.diagnostics(id))")
                let afterCP = try pm.state(id)
                #expect(afterCP["Running"] as? Bool == false, "still running after checkpoint: \(afterCP)")
                #expect(afterCP["Checkpointed"] as? Bool == true, "podman does not record the checkpoint: \(afterCP)")
                #expect(waitUntil { !isRunning(pid: pid1) }, "container init \(pid1) still running after checkpoint")
                #expect(waitUntil { !isRunning(pid: conmon1) }, "conmon \(conmon1) did not exit after the checkpoint")
                #expect(PodmanEnv.runtimeState(id).0 == nil, "cryo-runtime still has state for the checkpointed container")
                let images = pm.userdata(id) + "/checkpoint"
                #expect(FileManager.default.fileExists(atPath: images + "/inventory.img"), "no CRIU images in \(images)")
                #expect(FileManager.default.fileExists(atPath: images + "/descriptors.json"), "no descriptors.json in \(images)")
                let logAtCP = try pm.logs(id)
                let last = try #require(numbers(in: logAtCP).last, "no output before checkpoint")
                usleep(300_000)
                #expect(numbers(in: try pm.logs(id)).last == last, "the log grew after the checkpoint")

                let rr = try pm.run(["container", "restore", "--keep", id])
                try #require(rr.succeeded, "podman container restore: \(rr)\(pm.diagnostics(id))")
                let after = try pm.state(id)
                #expect(after["Running"] as? Bool == true, "not running after restore: \(after)")
                #expect(after["Restored"] as? Bool == true, "\(after)")
                let conmon2 = try #require((after["ConmonPid"] as? NSNumber)?.int32Value)
                let pid2 = try #require((after["Pid"] as? NSNumber)?.int32Value)
                #expect(conmon2 != conmon1)
                #expect(isRunning(pid: pid2), "restored init \(pid2) not running")
                let (rs2, rsr2) = PodmanEnv.runtimeState(id)
                #expect(rs2?["status"] as? String == "running", "\(String(describing: rsr2))")
                #expect((rs2?["pid"] as? NSNumber)?.int32Value == pid2, "runtime pid \(String(describing: rs2?["pid"])) vs podman's \(pid2)")

                #expect(pm.waitForLogs(id) { (numbers(in: $0).last ?? -1) > last + 3 }, "counter did not continue after restore\(pm.diagnostics(id))")
                expectLogContinues(try pm.logs(id), after: last, what: "podman-restored counter")

                // The restored container is a normal one: exec, then rm -f.
                let ex = try pm.run(["exec", id, "sh", "-c", "echo exec-$((6*7))"])
                #expect(ex.succeeded && ex.stdout == "exec-42\n", "podman exec in the restored container: \(ex)")

                let rm = try pm.run(["rm", "-f", "-t", "0", id])
                #expect(rm.succeeded, "\(rm)")
                #expect(waitUntil { !isRunning(pid: pid2) }, "restored init \(pid2) still running after rm -f")
                #expect(waitUntil { !isRunning(pid: conmon2) }, "conmon \(conmon2) did not exit after rm -f")
                #expect(waitUntil { PodmanEnv.runtimeState(id).0 == nil }, "cryo-runtime state left after podman rm -f: \(String(describing: PodmanEnv.runtimeState(id).1))")
                #expect(waitUntil { CgroupCleaner.dirs(pm.cgroupParent + "/libpod-" + id).isEmpty },
                        "container cgroup left after rm -f: \(CgroupCleaner.dirs(pm.cgroupParent + "/libpod-" + id))")
                let ps = try pm.ok(["ps", "-a", "--format", "{{.Names}}"])
                #expect(!ps.stdout.contains("counter"), "\(ps)")
            }
        }

        @Test("checkpoint --export → restore --import --name: a clone under a new id, and the original restored too")
        func exportImport() throws {
            try requireRuntimeCRIUAndPodman()
            try withPodman { env, pm in
                let image = "localhost/cryo-it-busybox:latest"
                try pm.importImage(image)
                let id = try pm.runDetached(name: "orig", image: image, args: Scripts.counter())
                try #require(pm.waitForLogs(id) { numbers(in: $0).count >= 5 }, "no counter output: \(pm.diagnostics(id))")

                let archive = env.path("orig-checkpoint.tar.zst")
                let cp = try pm.run(["container", "checkpoint", "--export", archive, id])
                try #require(cp.succeeded, "podman container checkpoint --export: \(cp)\(pm.diagnostics(id))")
                #expect(FileManager.default.fileExists(atPath: archive))
                let last = try #require(numbers(in: try pm.logs(id)).last)

                let ri = try pm.run(["container", "restore", "--import", archive, "--name", "clone"])
                try #require(ri.succeeded, "podman container restore --import --name: \(ri)")
                let cloneID = ri.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                pm.track(cloneID)
                #expect(cloneID.count == 64 && cloneID != id, "the clone should have a new id: \(ri)")
                let cs = try pm.state("clone")
                #expect(cs["Running"] as? Bool == true && cs["Restored"] as? Bool == true, "\(cs)\(pm.diagnostics(cloneID))")
                #expect(PodmanEnv.runtimeState(cloneID).0?["status"] as? String == "running")
                #expect(pm.waitForLogs("clone") { (numbers(in: $0).last ?? -1) > last + 3 }, "clone did not count on\(pm.diagnostics(cloneID))")
                expectLogContinues(try pm.logs("clone"), after: last, what: "imported clone")
                #expect(!CgroupCleaner.dirs(pm.cgroupParent + "/libpod-" + cloneID).isEmpty, "the clone is not in a cgroup of its own id")

                // The original keeps its local checkpoint: restore it next to the clone.
                let ro = try pm.run(["container", "restore", id])
                #expect(ro.succeeded, "restore of the original after --export: \(ro)\(pm.diagnostics(id))")
                if ro.succeeded {
                    #expect(pm.waitForLogs(id) { (numbers(in: $0).last ?? -1) > last + 3 }, "original did not count on")
                    expectLogContinues(try pm.logs(id), after: last, what: "original restored after export")
                    let p1 = (try pm.state(id)["Pid"] as? NSNumber)?.int32Value
                    let p2 = (try pm.state("clone")["Pid"] as? NSNumber)?.int32Value
                    #expect(p1 != nil && p2 != nil && p1 != p2)
                    #expect(p2.map { isRunning(pid: $0) } ?? false, "the clone died when the original was restored")
                }
                let rm = try pm.run(["rm", "-f", "-t", "0", id, "clone"])
                #expect(rm.succeeded, "\(rm)")
                #expect(waitUntil { PodmanEnv.runtimeState(id).0 == nil && PodmanEnv.runtimeState(cloneID).0 == nil }, "cryo-runtime state left after rm -f")
            }
        }

        @Test("checkpoint --leave-running, then checkpoint again; restore --keep, then checkpoint again (podman reuses userdata/checkpoint)")
        func repeatedCheckpoints() throws {
            try requireRuntimeCRIUAndPodman()
            try withPodman { _, pm in
                let id = try pm.runDetached(name: "again", args: Scripts.counter())
                try #require(pm.waitForLogs(id) { numbers(in: $0).count >= 5 }, "no counter output: \(pm.diagnostics(id))")

                let cp1 = try pm.run(["container", "checkpoint", "--leave-running", id])
                try #require(cp1.succeeded, "checkpoint --leave-running: \(cp1)\(pm.diagnostics(id))")
                #expect(try pm.state(id)["Running"] as? Bool == true, "not running after checkpoint --leave-running")
                let atCP1 = numbers(in: try pm.logs(id)).last ?? -1
                #expect(pm.waitForLogs(id) { (numbers(in: $0).last ?? -1) > atCP1 + 3 }, "stopped counting after checkpoint --leave-running")

                // podman checkpoints into the same <userdata>/checkpoint directory every time; runc
                // 1.1.5 overwrites the old images there.
                let cp2 = try pm.run(["container", "checkpoint", id])
                #expect(cp2.succeeded, "a second checkpoint of the same container (podman reuses its checkpoint directory, which runc accepts): \(cp2)")
                guard cp2.succeeded else { return }
                let last = try #require(numbers(in: try pm.logs(id)).last)
                let r1 = try pm.run(["container", "restore", "--keep", id])
                try #require(r1.succeeded, "restore --keep: \(r1)\(pm.diagnostics(id))")
                #expect(pm.waitForLogs(id) { (numbers(in: $0).last ?? -1) > last + 3 }, "did not continue after restore")
                expectLogContinues(try pm.logs(id), after: last, what: "restored after the second checkpoint")

                // --keep left the images of the last checkpoint in place: checkpoint once more.
                let cp3 = try pm.run(["container", "checkpoint", id])
                #expect(cp3.succeeded, "checkpoint after restore --keep: \(cp3)")
                guard cp3.succeeded else { return }
                let last3 = try #require(numbers(in: try pm.logs(id)).last)
                let r2 = try pm.run(["container", "restore", id])
                try #require(r2.succeeded, "restore: \(r2)\(pm.diagnostics(id))")
                #expect(pm.waitForLogs(id) { (numbers(in: $0).last ?? -1) > last3 + 3 }, "did not continue after the third checkpoint")
            }
        }

        @Test("a tty container (podman run -dt): exec -t, checkpoint and restore through conmon's console socket")
        func ttyContainer() throws {
            try requireRuntimeCRIUAndPodman()
            try withPodman { _, pm in
                let id = try pm.runDetached(name: "tty", tty: true, args: Scripts.counter())
                try #require(pm.waitForLogs(id) { numbers(in: $0).count >= 5 }, "no counter output: \(pm.diagnostics(id))")
                let inside = try pm.run(["exec", id, "sh", "-c", "readlink /proc/1/fd/1"])
                #expect(inside.stdout.hasPrefix("/dev/pts/"), "the container's stdout is not a pty: \(inside)")

                // conmon gives exec -t its own console socket; the runtime must make the pty the
                // exec'd process's controlling terminal.
                let ext = try pm.run(["exec", "-t", id, "tty"])
                #expect(ext.succeeded && ext.stdout.hasPrefix("/dev/pts/"), "podman exec -t: \(ext)")

                let cp = try pm.run(["container", "checkpoint", "--keep", id])
                try #require(cp.succeeded, "checkpoint of a tty container: \(cp)\(pm.diagnostics(id))")
                let last = try #require(numbers(in: try pm.logs(id)).last)
                let rr = try pm.run(["container", "restore", "--keep", id])
                try #require(rr.succeeded, "restore of a tty container: \(rr)\(pm.diagnostics(id))")
                #expect(try pm.state(id)["Running"] as? Bool == true)
                #expect(pm.waitForLogs(id) { (numbers(in: $0).last ?? -1) > last + 3 }, "tty counter did not continue\(pm.diagnostics(id))")
                expectLogContinues(try pm.logs(id), after: last, what: "restored tty container")
                let again = try pm.run(["exec", id, "sh", "-c", "readlink /proc/1/fd/1"])
                #expect(again.stdout.hasPrefix("/dev/pts/"), "after restore the container's stdout is not a pty: \(again)")
            }
        }
    }
}
