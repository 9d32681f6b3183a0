// Checkpoint/restore through cryo-runtime's runc-compatible command line:
//   cryo-runtime checkpoint --image-path DIR [--leave-running] ID
//   cryo-runtime restore --image-path DIR --bundle BUNDLE --detach [--pid-file F] ID2
// As with runc, the restored container's stdio are the stdio of the `restore` process (here:
// fresh pipes), and a checkpoint without --leave-running ends the container.

import Foundation
import CryoTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - C/R helpers

/// A container brought back by `restore --detach`: the restore process's pipes are its stdio.
struct RestoredContainer {
    let id: String
    let io: Launched
    let pidFile: String
    var stdout: OutputCollector { io.stdout }
    var stderr: OutputCollector { io.stderr }
}

extension TestEnv {
    func checkpoint(_ id: String, image: String, leaveRunning: Bool = false, extra: [String] = []) throws -> CommandResult {
        try cryo(["checkpoint", "--image-path", image] + (leaveRunning ? ["--leave-running"] : []) + extra + [id], timeout: 120)
    }

    /// `checkpoint` that must succeed.
    func checkpointOK(_ id: String, image: String, leaveRunning: Bool = false) throws {
        let r = try checkpoint(id, image: image, leaveRunning: leaveRunning)
        guard r.succeeded else { throw HarnessError("checkpoint failed: \(r)") }
    }

    /// `restore --detach` with pipes for stdio; returns the launched restore process (finished).
    func launchRestore(_ id: String, image: String, bundle: TestBundle, extra: [String] = []) throws -> (RestoredContainer, CommandResult) {
        let pidFile = path("\(id).pid")
        let l = try launchCryo(["restore", "--image-path", image, "--bundle", bundle.path, "--detach", "--pid-file", pidFile] + extra + [id])
        let r = l.result(timeout: 120)
        return (RestoredContainer(id: id, io: l, pidFile: pidFile), r)
    }

    /// `restore` that must succeed, leave the container running and write the pid file.
    func restoreOK(_ id: String, image: String, bundle: TestBundle, sourceLocation: SourceLocation = #_sourceLocation) throws -> RestoredContainer {
        let (c, r) = try launchRestore(id, image: image, bundle: bundle)
        guard r.succeeded else { throw HarnessError("restore failed: \(r)") }
        let (st, sr) = try state(id)
        guard let st else { throw HarnessError("restored container has no state: \(sr)") }
        #expect(st["status"] as? String == "running", "restored container: \(sr)", sourceLocation: sourceLocation)
        let pidText = readFile(c.pidFile)?.trimmingCharacters(in: .whitespacesAndNewlines)
        let statePid = (st["pid"] as? NSNumber)?.int32Value
        #expect(pidText != nil && Int32(pidText!) == statePid, "pid file \(pidText ?? "missing") vs state pid \(String(describing: statePid))",
                sourceLocation: sourceLocation)
        if let p = statePid { #expect(isRunning(pid: p), "restored init \(p) is not running", sourceLocation: sourceLocation) }
        return c
    }

    /// A started counter container whose output has reached at least `count` numbers.
    func startCounter(_ tag: String, prefix: String = "", count: Int = 5,
                      edit: (inout JSONObject) throws -> Void = { _ in }) throws -> TestContainer {
        let bundle = try makeBundle("bundle-\(tag)", args: Scripts.counter(prefix: prefix), edit: edit)
        let c = try startContainer(bundle, id: newID(tag))
        guard c.stdout.waitFor({ numbers(in: $0, prefix: prefix).count >= count }) else {
            throw HarnessError("counter did not start; stdout: \(c.stdout.text) stderr: \(c.stderr.text)")
        }
        return c
    }
}

/// After a checkpoint without --leave-running: the container must have ended (its stdout pipe
/// reaches EOF). Returns the last number it printed.
func lastNumberAfterCheckpoint(_ c: TestContainer, prefix: String = "", sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
    #expect(c.stdout.waitForEOF(), "container still writing to its stdout after checkpoint without --leave-running",
            sourceLocation: sourceLocation)
    return try #require(numbers(in: c.stdout.text, prefix: prefix).last, "no output before checkpoint", sourceLocation: sourceLocation)
}

/// The counter on `out` must continue from `last`: it resumes at last+1 (or repeats `last`, if
/// the pipe's unread data was restored), counts by one, and gets past last+3.
func expectCounterContinues(_ out: OutputCollector, after last: Int, prefix: String = "", what: String = "restored container",
                            sourceLocation: SourceLocation = #_sourceLocation) {
    let ok = out.waitFor { (numbers(in: $0, prefix: prefix).last ?? -1) > last + 3 }
    let got = numbers(in: out.text, prefix: prefix)
    #expect(ok, "\(what) did not count past \(last + 3); output: \(out.text.suffix(300))", sourceLocation: sourceLocation)
    guard let first = got.first else { return }
    #expect(first == last + 1 || first == last, "\(what) restarted at \(first) instead of continuing after \(last)", sourceLocation: sourceLocation)
    #expect(got == Array(first..<(first + got.count)), "\(what) did not count by one: \(got.prefix(20))", sourceLocation: sourceLocation)
}

extension CryoIntegration {
    @Suite("Checkpoint and restore")
    struct CheckpointRestore {
        @Test("a counter continues after checkpoint and restore, on the restore's stdout")
        func counterContinues() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let c = try env.startCounter("count")
                let image = env.path("image")
                try env.checkpointOK(c.id, image: image)
                let last = try lastNumberAfterCheckpoint(c)
                #expect(last >= 4)

                let r = try env.restoreOK(env.newID("count-r"), image: image, bundle: c.bundle)
                expectCounterContinues(r.stdout, after: last)
            }
        }

        @Test("a restored container has the whole lifecycle: ps, exec, pause, resume, kill, delete")
        func restoredLifecycle() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let c = try env.startCounter("rlife")
                let image = env.path("image")
                try env.checkpointOK(c.id, image: image)
                let last = try lastNumberAfterCheckpoint(c)
                let r = try env.restoreOK(env.newID("rlife-r"), image: image, bundle: c.bundle)
                expectCounterContinues(r.stdout, after: last)
                let pid = try #require(try env.initPid(r.id))

                #expect(try env.psPids(r.id).contains(pid))
                let e = try env.exec(r.id, ["sh", "-c", "echo in-restored; exit 4"])
                #expect(e.status == 4 && e.stdout == "in-restored\n", "\(e)")

                try env.cryoOK(["pause", r.id])
                #expect(try env.status(r.id) == "paused")
                let atPause = numbers(in: r.stdout.text).last ?? -1
                try env.cryoOK(["resume", r.id])
                #expect(try env.status(r.id) == "running")
                #expect(r.stdout.waitFor { (numbers(in: $0).last ?? -1) > atPause + 2 }, "did not resume")

                try env.cryoOK(["kill", r.id, "KILL"])
                let stopped = try env.waitForStatus(r.id, "stopped")
                let status = try env.status(r.id)
                #expect(stopped, "restored container is \(status ?? "unknown") after kill")
                #expect(r.stdout.waitForEOF(), "restored container's stdout still open after kill")
                try env.cryoOK(["delete", r.id])
                #expect(try env.state(r.id).0 == nil)
                #expect(CgroupCleaner.dirs("cryo/" + r.id).isEmpty, "cgroup left after delete: \(CgroupCleaner.dirs("cryo/" + r.id))")
            }
        }

        @Test("restore without --detach waits for the container and returns its exit code")
        func restoreForeground() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let bundle = try env.makeBundle(args: ["sh", "-c", "i=0; while [ $i -lt 25 ]; do echo $i; i=$((i+1)); sleep 0.1; done; exit 7"])
                let c = try env.startContainer(bundle, id: env.newID("fg"))
                #expect(c.stdout.waitFor { numbers(in: $0).count >= 3 })
                let image = env.path("image")
                try env.checkpointOK(c.id, image: image)
                let last = try lastNumberAfterCheckpoint(c)
                try #require(last < 20, "the container got too far before the checkpoint")

                let id2 = env.newID("fg-r")
                let l = try env.launchCryo(["restore", "--image-path", image, "--bundle", bundle.path, id2])
                let r = l.result(timeout: 60)
                #expect(r.status == 7, "foreground restore should return the container's exit code: \(r)")
                let got = numbers(in: l.stdout.text)
                #expect(got.last == 24, "the restored container did not finish counting: \(got)")
                #expect(got.first.map { $0 == last + 1 || $0 == last } ?? false, "restarted instead of continuing after \(last): \(got)")
                let (st, sr) = try env.state(id2)
                #expect(st == nil, "a foreground restore leaves no container behind once it exits (like run): \(sr)")
            }
        }

        @Test("checkpoint of a created (not started) or unknown container fails clearly")
        func checkpointWrongState() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let bundle = try env.makeBundle(args: ["sleep", "1000"])
                let id = env.newID("created")
                _ = try env.createContainer(bundle, id: id)
                let r = try env.checkpoint(id, image: env.path("image"))
                #expect(r.status != 0, "\(r)")
                #expect(r.stderr.contains("created"), "the message should give the state: \(r)")
                #expect(try env.status(id) == "created")

                let ghost = try env.checkpoint(env.newID("ghost"), image: env.path("image2"))
                #expect(ghost.status != 0 && ghost.stderr.contains("does not exist"), "\(ghost)")
            }
        }

        @Test("restore under an id that already exists fails with \"already exists\" and leaves both alone")
        func restoreExistingID() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let c = try env.startCounter("exists")
                let image = env.path("image")
                try env.checkpointOK(c.id, image: image, leaveRunning: true)
                let (_, r) = try env.launchRestore(c.id, image: image, bundle: c.bundle)
                #expect(r.status != 0, "\(r)")
                #expect(r.stderr.contains("already exists"), "\(r)")
                #expect(try env.status(c.id) == "running", "the existing container was disturbed")
                let at = numbers(in: c.stdout.text).last ?? -1
                #expect(c.stdout.waitFor { (numbers(in: $0).last ?? -1) > at + 2 }, "the existing container stopped counting")
                #expect(FileManager.default.fileExists(atPath: image + "/pstree.img"))
            }
        }

        @Test("checkpoint without --leave-running ends the container and frees its id (runc semantics)")
        func checkpointEndsContainer() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let c = try env.startCounter("ends")
                let pid = try #require(try env.initPid(c.id))
                let image = env.path("image")
                try env.checkpointOK(c.id, image: image)
                #expect(waitUntil { !isRunning(pid: pid) }, "init \(pid) still running after checkpoint")
                let (st, r) = try env.state(c.id)
                #expect(st == nil && r.stderr.contains("does not exist"), "container should be gone after checkpoint: \(r)")
                #expect(CgroupCleaner.dirs("cryo/" + c.id).isEmpty, "cgroup left after checkpoint: \(CgroupCleaner.dirs("cryo/" + c.id))")
                let last = try lastNumberAfterCheckpoint(c)

                // Restoring under the same id (what containerd and podman do) works.
                let restored = try env.restoreOK(c.id, image: image, bundle: c.bundle)
                expectCounterContinues(restored.stdout, after: last)
            }
        }

        @Test("checkpoint --leave-running keeps the original running and counting")
        func leaveRunning() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let c = try env.startCounter("leave")
                let pid = try #require(try env.initPid(c.id))
                let image = env.path("image")
                try env.checkpointOK(c.id, image: image, leaveRunning: true)
                let atCheckpoint = numbers(in: c.stdout.text).last ?? -1
                #expect(try env.status(c.id) == "running")
                #expect(try env.initPid(c.id) == pid, "the init pid changed")
                #expect(c.stdout.waitFor { (numbers(in: $0).last ?? -1) > atCheckpoint + 3 }, "original stopped counting: \(c.stdout.text.suffix(200))")
                #expect(!c.stdout.isEOF)
                let all = numbers(in: c.stdout.text)
                #expect(all == Array(0..<all.count), "the original's counter skipped or restarted: \(all)")
                #expect(FileManager.default.fileExists(atPath: image + "/pstree.img"), "no CRIU images in \(image)")
            }
        }

        @Test("checkpoint of a paused container keeps it paused; resume continues")
        func checkpointPaused() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let c = try env.startCounter("paused")
                try env.cryoOK(["pause", c.id])
                let image = env.path("image")
                try env.checkpointOK(c.id, image: image, leaveRunning: true)
                #expect(try env.status(c.id) == "paused", "checkpoint --leave-running must leave a paused container paused")
                let atPause = numbers(in: c.stdout.text).last ?? -1
                try env.cryoOK(["resume", c.id])
                #expect(c.stdout.waitFor { (numbers(in: $0).last ?? -1) > atPause + 2 }, "did not resume counting")
            }
        }

        @Test("the same image restored twice under two new ids: both run and continue")
        func restoreTwice() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let c = try env.startCounter("twice")
                let image = env.path("image")
                try env.checkpointOK(c.id, image: image)
                let last = try lastNumberAfterCheckpoint(c)

                let r1 = try env.restoreOK(env.newID("twice-a"), image: image, bundle: c.bundle)
                let r2 = try env.restoreOK(env.newID("twice-b"), image: image, bundle: c.bundle)
                expectCounterContinues(r1.stdout, after: last, what: "first restore")
                expectCounterContinues(r2.stdout, after: last, what: "second restore")
                #expect(try env.status(r1.id) == "running")
                #expect(try env.status(r2.id) == "running")
                let p1 = try env.initPid(r1.id), p2 = try env.initPid(r2.id)
                #expect(p1 != nil && p2 != nil && p1 != p2)
                #expect(FileManager.default.fileExists(atPath: image + "/pstree.img"), "restore consumed the image")
            }
        }

        @Test("a multi-process pipeline survives checkpoint and restore")
        func pipelineSurvives() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let bundle = try env.makeBundle(args: [
                    "sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done | while read l; do echo p:$l; done",
                ])
                let c = try env.startContainer(bundle, id: env.newID("pipe"))
                #expect(c.stdout.waitFor { numbers(in: $0, prefix: "p:").count >= 5 })
                let before = try env.psPids(c.id).count
                #expect(before >= 3)
                let image = env.path("image")
                try env.checkpointOK(c.id, image: image)
                let last = try lastNumberAfterCheckpoint(c, prefix: "p:")

                let r = try env.restoreOK(env.newID("pipe-r"), image: image, bundle: bundle)
                expectCounterContinues(r.stdout, after: last, prefix: "p:")
                let after = try env.psPids(r.id)
                #expect(after.count >= 3, "restored container has pids \(after), the original had \(before)")
            }
        }

        @Test("a bind-mounted host file is readable (and still read-only) after restore")
        func bindMountAfterRestore() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let hostFile = env.path("hostfile.txt")
                let content = "bind mount \(UInt32.random(in: 0...UInt32.max))\n"
                try writeFile(hostFile, content)
                let c = try env.startCounter("bind") { c in
                    c.appendMount(destination: "/etc/hostfile", type: "bind", source: hostFile, options: ["bind", "ro"])
                }
                let image = env.path("image")
                try env.checkpointOK(c.id, image: image)
                _ = try lastNumberAfterCheckpoint(c)

                let r = try env.restoreOK(env.newID("bind-r"), image: image, bundle: c.bundle)
                let cat = try env.exec(r.id, ["cat", "/etc/hostfile"])
                #expect(cat.status == 0, "\(cat)")
                #expect(cat.stdout == content, "\(cat)")
                let w = try env.exec(r.id, ["sh", "-c", "echo changed > /etc/hostfile"])
                #expect(w.status != 0, "ro bind mount writable after restore: \(w)")
                #expect(readFile(hostFile) == content)
            }
        }

        @Test("the memory limit is still in force after restore, in the new id's cgroup")
        func memoryLimitAfterRestore() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let limit = 64 * 1024 * 1024
                let c = try env.startCounter("mem") { c in
                    c[path: ["linux", "resources", "memory"]] = ["limit": limit]
                }
                let image = env.path("image")
                try env.checkpointOK(c.id, image: image)
                let last = try lastNumberAfterCheckpoint(c)

                let r = try env.restoreOK(env.newID("mem-r"), image: image, bundle: c.bundle)
                expectCounterContinues(r.stdout, after: last)
                let dir = "/sys/fs/cgroup/memory/cryo/\(r.id)"
                let host = readFile(dir + "/memory.limit_in_bytes")?.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(host == "\(limit)", "\(dir)/memory.limit_in_bytes: \(host ?? "missing")")
                let pid = try #require(try env.initPid(r.id))
                #expect(CgroupCleaner.procs(dir).contains(pid), "restored init \(pid) is not in \(dir): \(CgroupCleaner.procs(dir))")
                let inside = try env.exec(r.id, ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"])
                #expect(inside.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(limit)", "\(inside)")
            }
        }

        @Test("stdout and stderr after restore reach the restore process's pipes, not the old ones")
        func stdioAfterRestore() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let bundle = try env.makeBundle(args: [
                    "sh", "-c", "i=0; while true; do echo out$i; echo err$i >&2; i=$((i+1)); sleep 0.1; done",
                ])
                let c = try env.startContainer(bundle, id: env.newID("stdio"))
                #expect(c.stdout.waitFor { numbers(in: $0, prefix: "out").count >= 3 })
                #expect(c.stderr.waitFor { numbers(in: $0, prefix: "err").count >= 3 }, "stderr: \(c.stderr.text)")
                let image = env.path("image")
                try env.checkpointOK(c.id, image: image)
                #expect(c.stderr.waitForEOF(), "old stderr pipe still open after checkpoint")
                let lastOut = try lastNumberAfterCheckpoint(c, prefix: "out")
                let lastErr = try #require(numbers(in: c.stderr.text, prefix: "err").last)

                let r = try env.restoreOK(env.newID("stdio-r"), image: image, bundle: bundle)
                expectCounterContinues(r.stdout, after: lastOut, prefix: "out", what: "stdout after restore")
                expectCounterContinues(r.stderr, after: lastErr, prefix: "err", what: "stderr after restore")
                #expect(!r.stdout.isEOF, "the restored container's stdout closed")
            }
        }

        @Test("checkpoint of a container whose stdout is a host file fails with CRIU's reason and leaves it running")
        func hostFileStdoutCannotBeDumped() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let logFile = env.path("stdout.log")
                let bundle = try env.makeBundle(args: Scripts.counter())
                let c = try env.startContainer(bundle, id: env.newID("hostfile"), stdout: .file(logFile))
                #expect(waitUntil { numbers(in: readFile(logFile) ?? "").count >= 3 }, "no output in \(logFile)")

                let r = try env.checkpoint(c.id, image: env.path("image"))
                #expect(r.status != 0, "checkpoint of a container with a host-file stdout succeeded: \(r)")
                // CRIU: "Can't lookup mount=N for fd=1 path=/tmp/cryo-it-…/stdout.log"
                #expect(r.stderr.contains("Can't lookup mount"), "the error should carry CRIU's reason: \(r)")
                #expect(r.stderr.contains(logFile) || r.stderr.contains("fd=1"), "the error should name the file: \(r)")

                #expect(try env.status(c.id) == "running", "the container must still be running (not frozen, not killed)")
                let atFailure = numbers(in: readFile(logFile) ?? "").last ?? -1
                #expect(waitUntil { (numbers(in: readFile(logFile) ?? "").last ?? -1) > atFailure + 2 },
                        "the container stopped counting after the failed checkpoint")
            }
        }

        @Test("restore from a corrupt image fails and leaves the image directory unchanged")
        func corruptImage() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let c = try env.startCounter("corrupt")
                let image = env.path("image")
                try env.checkpointOK(c.id, image: image, leaveRunning: true)
                let corrupt = env.path("corrupt-image")
                try Tool.check("/bin/cp", ["-a", image, corrupt])
                try FileManager.default.removeItem(atPath: corrupt + "/pstree.img")
                let before = snapshotDirectory(corrupt)
                #expect(!before.isEmpty)

                let id2 = env.newID("corrupt-r")
                let (r, res) = try env.launchRestore(id2, image: corrupt, bundle: c.bundle, extra: ["--work-path", env.path("work")])
                #expect(res.status != 0, "restore from an image without pstree.img succeeded: \(res)")
                #expect(!res.stderr.isEmpty, "no error message: \(res)")
                let after = snapshotDirectory(corrupt)
                #expect(Set(after.keys) == Set(before.keys), "files changed: added \(Set(after.keys).subtracting(before.keys)), removed \(Set(before.keys).subtracting(after.keys))")
                for (k, v) in before where after[k] != nil && after[k] != v {
                    Issue.record("\(k) was modified by the failed restore")
                }
                let (st, sr) = try env.state(id2)
                #expect(st == nil, "a failed restore left a container behind: \(sr)")
                #expect(CgroupCleaner.dirs("cryo/" + id2).isEmpty, "a failed restore left cgroups: \(CgroupCleaner.dirs("cryo/" + id2))")
                #expect(r.stdout.waitForEOF(), "something still holds the failed restore's stdout")
                #expect(try env.status(c.id) == "running", "the original was disturbed")
            }
        }

        @Test("a program using Linux AIO (io_setup/io_submit/io_getevents) keeps counting after restore")
        func aioCounter() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let binary = try Fixtures.aioCounter.get()
                let bundle = try env.makeBundle("bundle-aio", args: ["/bin/aio-counter", "/tmp/aio-counter.txt", "100"]) { c in
                    c[path: ["root", "readonly"]] = false
                }
                try Tool.check("/bin/cp", [binary, bundle.rootfs + "/bin/aio-counter"])
                let c = try env.startContainer(bundle, id: env.newID("aio"))
                #expect(c.stdout.waitFor { numbers(in: $0, prefix: "aio ").count >= 5 },
                        "aio-counter did not run: \(c.stdout.text) \(c.stderr.text)")
                let image = env.path("image")
                try env.checkpointOK(c.id, image: image)
                let last = try lastNumberAfterCheckpoint(c, prefix: "aio ")
                #expect(!c.stdout.text.contains("ERROR"), "\(c.stdout.text)")
                let file = readFile(bundle.rootfs + "/tmp/aio-counter.txt")?.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(file.flatMap { Int($0) } == last, "the file holds \(file ?? "nothing"), the last printed value is \(last)")

                let r = try env.restoreOK(env.newID("aio-r"), image: image, bundle: bundle)
                expectCounterContinues(r.stdout, after: last, prefix: "aio ")
                #expect(!r.stdout.text.contains("ERROR") && !r.stderr.text.contains("ERROR"), "\(r.stdout.text) \(r.stderr.text)")
                #expect(try env.status(r.id) == "running", "aio-counter exited after restore: \(r.stdout.text.suffix(300))")
            }
        }
    }
}
