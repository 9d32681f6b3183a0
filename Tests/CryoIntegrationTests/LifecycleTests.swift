// Lifecycle of cryo-runtime containers through its runc-compatible command line:
// spec, create, start, state, pause, resume, kill, delete, run, exec, list, ps, errors,
// hostname, bind mounts, cgroup limits, multi-process containers, hooks.

import CryoOCI
import Foundation
import CryoTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension CryoIntegration {
    @Suite("Lifecycle")
    struct Lifecycle {
        // MARK: spec

        @Test("spec writes a config.json that round-trips through the OCI model")
        func specRoundTrips() throws {
            try requireRuntime()
            try withEnv { env in
                let dir = env.path("spec")
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                let r = try Tool.run(Harness.binary, ["spec", "--bundle", dir])
                #expect(r.succeeded, "\(r)")
                let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))
                let original = try #require(try JSONSerialization.jsonObject(with: data) as? JSONObject)

                let spec = try JSONDecoder().decode(Spec.self, from: data)
                #expect(spec.process?.args == ["sh"])
                #expect(spec.root?.path == "rootfs")
                let nsTypes = Set(spec.linux?.namespaces?.map(\.type) ?? [])
                #expect(nsTypes.isSuperset(of: ["pid", "mount", "ipc", "uts", "network"]))

                // Decode → encode → decode gives the same model, and the re-encoded JSON is the
                // same document (nothing the default spec contains is lost by the model).
                let reencoded = try JSONEncoder().encode(spec)
                #expect(try JSONDecoder().decode(Spec.self, from: reencoded) == spec)
                let again = try #require(try JSONSerialization.jsonObject(with: reencoded) as? JSONObject)
                #expect(NSDictionary(dictionary: original).isEqual(to: again),
                        "config.json changed by a round trip:\n\(String(decoding: data, as: UTF8.self))\nvs\n\(String(decoding: reencoded, as: UTF8.self))")

                // A second `spec` refuses to overwrite.
                let r2 = try Tool.run(Harness.binary, ["spec", "--bundle", dir])
                #expect(!r2.succeeded, "\(r2)")
                #expect(r2.stderr.contains("exists"), "\(r2)")
            }
        }

        // MARK: the whole lifecycle

        @Test("create → created → start → running → pause → paused → resume → kill → stopped → delete → gone")
        func fullLifecycle() throws {
            try requireRuntime()
            try withEnv { env in
                let bundle = try env.makeBundle(args: Scripts.counter(interval: "0.1"))
                let id = env.newID("life")
                let c = try env.createContainer(bundle, id: id)

                let (created, r0) = try env.state(id)
                let st = try #require(created, "\(r0)")
                #expect(st["status"] as? String == "created")
                #expect(st["id"] as? String == id)
                #expect(st["bundle"] as? String == bundle.path)
                let pid = try #require((st["pid"] as? NSNumber)?.int32Value)
                #expect(pid > 0)
                #expect(kill(pid, 0) == 0, "init pid \(pid) is not alive")
                // The user process has not run yet.
                usleep(200_000)
                #expect(numbers(in: c.stdout.text).isEmpty, "output before start: \(c.stdout.text)")

                try env.cryoOK(["start", id])
                #expect(try env.status(id) == "running")
                #expect(c.stdout.waitFor { numbers(in: $0).count >= 3 }, "no counter output; got: \(c.stdout.text)")
                // start of a running container fails.
                let again = try env.cryo(["start", id])
                #expect(!again.succeeded, "\(again)")

                try env.cryoOK(["pause", id])
                #expect(try env.status(id) == "paused")
                let atPause = numbers(in: c.stdout.text).last ?? -1
                usleep(500_000)
                #expect(numbers(in: c.stdout.text).last ?? -1 <= atPause + 1, "counter advanced while paused")

                try env.cryoOK(["resume", id])
                #expect(try env.status(id) == "running")
                #expect(c.stdout.waitFor { (numbers(in: $0).last ?? -1) > atPause + 2 }, "counter did not resume: \(c.stdout.text)")

                try env.cryoOK(["kill", id, "KILL"])
                let stopped = try env.waitForStatus(id, "stopped")
                let statusAfterKill = try env.status(id)
                #expect(stopped, "status is \(statusAfterKill ?? "unknown") after kill")
                #expect(c.stdout.waitForEOF(), "container stdout still open after kill")
                // kill of a stopped container fails.
                let k2 = try env.cryo(["kill", id, "KILL"])
                #expect(!k2.succeeded, "\(k2)")

                try env.cryoOK(["delete", id])
                let (gone, r) = try env.state(id)
                #expect(gone == nil)
                #expect(r.status != 0, "\(r)")
                #expect(r.stderr.contains("does not exist"), "\(r)")
                #expect(CgroupCleaner.dirs("cryo/" + id).isEmpty, "cgroup left after delete: \(CgroupCleaner.dirs("cryo/" + id))")
            }
        }

        // MARK: run

        @Test("run (foreground) returns the container's exit code and removes it")
        func runForegroundExitCode() throws {
            try requireRuntime()
            try withEnv { env in
                let bundle = try env.makeBundle(args: ["sh", "-c", "echo out-line; echo err-line >&2; exit 3"])
                let id = env.newID("run")
                let r = try env.cryo(["run", "--bundle", bundle.path, id])
                #expect(r.status == 3, "\(r)")
                #expect(r.stdout.contains("out-line"), "\(r)")
                #expect(r.stderr.contains("err-line"), "\(r)")
                let (gone, s) = try env.state(id)
                #expect(gone == nil, "container still exists after run: \(s)")
            }
        }

        @Test("run --detach returns while the container keeps running")
        func runDetach() throws {
            try requireRuntime()
            try withEnv { env in
                let bundle = try env.makeBundle(args: Scripts.counter(prefix: "d"))
                let id = env.newID("rund")
                let l = try env.launchCryo(["run", "--detach", "--bundle", bundle.path, id])
                let r = l.result()
                #expect(r.succeeded, "\(r)")
                #expect(try env.status(id) == "running")
                #expect(l.stdout.waitFor { numbers(in: $0, prefix: "d").count >= 2 }, "no output: \(l.stdout.text)")
                try env.cryoOK(["delete", "--force", id])
                #expect(l.stdout.waitForEOF(), "container stdout still open after delete --force")
            }
        }

        // MARK: exec

        @Test("exec prints the process's output and returns its exit code")
        func execOutputAndExitCode() throws {
            try requireRuntime()
            try withEnv { env in
                let bundle = try env.makeBundle(args: ["sleep", "1000"])
                let id = env.newID("exec")
                _ = try env.startContainer(bundle, id: id)

                let hi = try env.exec(id, ["echo", "hi"])
                #expect(hi.status == 0, "\(hi)")
                #expect(hi.stdout == "hi\n", "\(hi)")

                let five = try env.exec(id, ["sh", "-c", "exit 5"])
                #expect(five.status == 5, "\(five)")

                let missing = try env.exec(id, ["/no/such/binary"])
                #expect(missing.status != 0, "\(missing)")
                #expect(!missing.stderr.isEmpty, "no error message: \(missing)")
            }
        }

        // MARK: list, ps

        @Test("list --format json contains the container")
        func listJSON() throws {
            try requireRuntime()
            try withEnv { env in
                let bundle = try env.makeBundle(args: ["sleep", "1000"])
                let id = env.newID("list")
                _ = try env.startContainer(bundle, id: id)
                let r = try env.cryoOK(["list", "--format", "json"])
                let arr = try #require(parseJSON(r.stdout) as? [JSONObject], "not a JSON array of objects: \(r)")
                let mine = arr.first { $0["id"] as? String == id }
                #expect(mine != nil, "\(id) not listed: \(r)")
                #expect(mine?["status"] as? String == "running")
                #expect(mine?["bundle"] as? String == bundle.path)

                let q = try env.cryoOK(["list", "--quiet"])
                #expect(q.stdout.split(separator: "\n").contains(Substring(id)), "\(q)")
            }
        }

        @Test("ps --format json contains the init pid")
        func psJSON() throws {
            try requireRuntime()
            try withEnv { env in
                let bundle = try env.makeBundle(args: ["sleep", "1000"])
                let id = env.newID("ps")
                _ = try env.startContainer(bundle, id: id)
                let pid = try #require(try env.initPid(id))
                let pids = try env.psPids(id)
                #expect(pids.contains(pid), "ps \(pids) lacks init pid \(pid)")
            }
        }

        @Test("a multi-process pipeline shows several pids in ps")
        func multiProcessPipeline() throws {
            try requireRuntime()
            try withEnv { env in
                let bundle = try env.makeBundle(args: [
                    "sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done | while read l; do echo p:$l; done",
                ])
                let id = env.newID("pipe")
                let c = try env.startContainer(bundle, id: id)
                #expect(c.stdout.waitFor { numbers(in: $0, prefix: "p:").count >= 3 }, "no pipeline output: \(c.stdout.text)")
                var pids: [Int32] = []
                let ok = waitUntil(timeout: 10, interval: 0.05) {
                    pids = (try? env.psPids(id)) ?? []
                    return pids.count >= 3
                }
                #expect(ok, "ps shows \(pids), expected init + both sides of the pipe")
                let initPid = try #require(try env.initPid(id))
                #expect(pids.contains(initPid))
            }
        }

        // MARK: delete

        @Test("delete of a running container fails without --force and succeeds with it")
        func deleteRunning() throws {
            try requireRuntime()
            try withEnv { env in
                let bundle = try env.makeBundle(args: ["sleep", "1000"])
                let id = env.newID("del")
                let c = try env.startContainer(bundle, id: id)
                let pid = try #require(try env.initPid(id))

                let r = try env.cryo(["delete", id])
                #expect(r.status != 0, "\(r)")
                #expect(r.stderr.contains("running"), "message should say the container is running: \(r)")
                #expect(try env.status(id) == "running", "delete without --force must not stop the container")

                try env.cryoOK(["delete", "--force", id])
                #expect(try env.state(id).0 == nil)
                #expect(waitUntil { !isRunning(pid: pid) }, "init \(pid) alive after delete --force")
                #expect(c.stdout.waitForEOF())
                #expect(CgroupCleaner.dirs("cryo/" + id).isEmpty, "cgroup left: \(CgroupCleaner.dirs("cryo/" + id))")

                // delete --force of a container that does not exist succeeds (runc does the same).
                try env.cryoOK(["delete", "--force", id])
            }
        }

        // MARK: errors

        @Test("create with an id that already exists fails with \"already exists\"")
        func duplicateID() throws {
            try requireRuntime()
            try withEnv { env in
                let bundle = try env.makeBundle(args: ["sleep", "1000"])
                let id = env.newID("dup")
                _ = try env.startContainer(bundle, id: id)
                let l = try env.launchCryo(["create", "--bundle", bundle.path, id])
                let r = l.result()
                #expect(r.status != 0, "\(r)")
                #expect(r.stderr.contains("already exists"), "\(r)")
                #expect(try env.status(id) == "running", "the existing container was disturbed")
            }
        }

        @Test("a bad config.json fails with a message naming the field")
        func badConfig() throws {
            try requireRuntime()
            try withEnv { env in
                let bundle = try env.makeBundle(args: ["true"]) { c in
                    c[path: ["process", "args"]] = "sh -c true"   // must be an array
                }
                let id = env.newID("badcfg")
                let l = try env.launchCryo(["create", "--bundle", bundle.path, id])
                let r = l.result()
                #expect(r.status != 0, "\(r)")
                #expect(r.stderr.contains("args"), "message should name process.args: \(r)")
                let (st, s) = try env.state(id)
                #expect(st == nil, "a failed create left a container: \(s)")
                #expect(s.stderr.contains("does not exist"), "\(s)")
                #expect(CgroupCleaner.dirs("cryo/" + id).isEmpty, "a failed create left its cgroup")
            }
        }

        @Test("a missing bundle fails clearly")
        func missingBundle() throws {
            try requireRuntime()
            try withEnv { env in
                let missing = env.path("no-such-bundle")
                let id = env.newID("nobundle")
                let r = try env.cryo(["create", "--bundle", missing, id])
                #expect(r.status != 0, "\(r)")
                #expect(r.stderr.contains(missing), "message should name the bundle: \(r)")
                #expect(try env.state(id).0 == nil)

                let run = try env.cryo(["run", "--bundle", missing, env.newID("nobundle")])
                #expect(run.status != 0, "\(run)")
                #expect(run.stderr.contains(missing), "\(run)")
            }
        }

        @Test("a process binary that does not exist fails create and run with a message naming it (as runc does)")
        func missingProcessBinary() throws {
            try requireRuntime()
            try withEnv { env in
                let bundle = try env.makeBundle(args: ["/no/such/binary"])
                // runc 1.1.5: `runc create failed: unable to start container process: exec:
                // "/no/such/binary": stat /no/such/binary: no such file or directory`, exit 1.
                let id = env.newID("nobin")
                let l = try env.launchCryo(["create", "--bundle", bundle.path, id])
                let r = l.result()
                #expect(r.status != 0, "create of a container whose process cannot be executed succeeded: \(r)")
                #expect(r.stderr.contains("/no/such/binary"), "message should name the binary: \(r)")
                #expect(try env.state(id).0 == nil, "a failed create left a container behind")

                let id2 = env.newID("nobin")
                let run = try env.cryo(["run", "--bundle", bundle.path, id2])
                #expect(run.status != 0, "\(run)")
                #expect(run.stderr.contains("/no/such/binary"), "run should say why the container did not start: \(run)")

                let id3 = env.newID("nobin")
                let rd = try env.launchCryo(["run", "--detach", "--bundle", bundle.path, id3]).result()
                #expect(rd.status != 0, "run --detach of a container whose process cannot be executed succeeded: \(rd)")
                #expect(rd.stderr.contains("/no/such/binary"), "\(rd)")
            }
        }

        @Test("state, start, kill and delete of an unknown container fail with \"does not exist\"")
        func unknownContainer() throws {
            try requireRuntime()
            try withEnv { env in
                let id = env.newID("ghost")
                for args in [["state", id], ["start", id], ["kill", id, "KILL"], ["delete", id], ["pause", id], ["exec", id, "true"]] {
                    let r = try env.cryo(args)
                    #expect(r.status != 0, "\(r)")
                    #expect(r.stderr.contains("does not exist"), "\(r)")
                }
            }
        }

        // MARK: config applied

        @Test("the hostname from config.json is applied")
        func hostname() throws {
            try requireRuntime()
            try withEnv { env in
                let bundle = try env.makeBundle(args: ["sleep", "1000"]) { c in
                    c["hostname"] = "it-host-name"
                }
                let id = env.newID("host")
                _ = try env.startContainer(bundle, id: id)
                let r = try env.exec(id, ["hostname"])
                #expect(r.status == 0, "\(r)")
                #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "it-host-name", "\(r)")
                let mine = ProcessInfo.processInfo.hostName
                #expect(mine != "it-host-name", "the host's hostname was changed")
            }
        }

        @Test("a host file bind-mounted read-only is readable and read-only")
        func bindMountedHostFile() throws {
            try requireRuntime()
            try withEnv { env in
                let hostFile = env.path("hostfile.txt")
                let content = "hello from the host \(UInt32.random(in: 0...UInt32.max))\n"
                try writeFile(hostFile, content)
                let bundle = try env.makeBundle(args: ["sleep", "1000"]) { c in
                    c.appendMount(destination: "/etc/hostfile", type: "bind", source: hostFile, options: ["bind", "ro"])
                }
                let id = env.newID("bind")
                _ = try env.startContainer(bundle, id: id)
                let r = try env.exec(id, ["cat", "/etc/hostfile"])
                #expect(r.status == 0, "\(r)")
                #expect(r.stdout == content, "\(r)")

                let w = try env.exec(id, ["sh", "-c", "echo changed > /etc/hostfile"])
                #expect(w.status != 0, "writing a ro bind mount succeeded: \(w)")
                #expect(readFile(hostFile) == content, "host file was modified")
            }
        }

        @Test("a memory limit is visible in the container's cgroup and on the host")
        func memoryLimit() throws {
            try requireRuntime()
            try withEnv { env in
                let limit = 64 * 1024 * 1024
                let bundle = try env.makeBundle(args: ["sleep", "1000"]) { c in
                    c[path: ["linux", "resources", "memory"]] = ["limit": limit]
                }
                let id = env.newID("mem")
                _ = try env.startContainer(bundle, id: id)
                let r = try env.exec(id, ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"])
                #expect(r.status == 0, "\(r)")
                #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(limit)", "\(r)")

                let host = "/sys/fs/cgroup/memory/cryo/\(id)/memory.limit_in_bytes"
                #expect(readFile(host)?.trimmingCharacters(in: .whitespacesAndNewlines) == "\(limit)", "host \(host): \(readFile(host) ?? "missing")")
                let pid = try #require(try env.initPid(id))
                let procs = CgroupCleaner.procs("/sys/fs/cgroup/memory/cryo/\(id)")
                #expect(procs.contains(pid), "init \(pid) not in the memory cgroup: \(procs)")
            }
        }

        @Test("linux.cgroupsPath places the cgroup there")
        func customCgroupsPath() throws {
            try requireRuntime()
            try withEnv { env in
                let limit = 48 * 1024 * 1024
                let id = env.newID("cgpath")
                let parent = "cryo-it-\(getpid())"
                env.trackCgroup(parent)
                let bundle = try env.makeBundle(args: ["sleep", "1000"]) { c in
                    c[path: ["linux", "resources", "memory"]] = ["limit": limit]
                    c[path: ["linux", "cgroupsPath"]] = "/\(parent)/\(id)"
                }
                _ = try env.startContainer(bundle, id: id)
                let host = "/sys/fs/cgroup/memory/\(parent)/\(id)/memory.limit_in_bytes"
                #expect(readFile(host)?.trimmingCharacters(in: .whitespacesAndNewlines) == "\(limit)", "host \(host): \(readFile(host) ?? "missing")")
                #expect(!FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/cryo/\(id)"), "default cgroup used despite cgroupsPath")
                let r = try env.exec(id, ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"])
                #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(limit)", "\(r)")
                try env.cryoOK(["delete", "--force", id])
                #expect(!FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/\(parent)/\(id)"), "cgroup left after delete")
            }
        }

        // MARK: hooks

        @Test("prestart, poststart and poststop hooks run and receive the container state")
        func hooks() throws {
            try requireRuntime()
            try withEnv { env in
                let script = env.path("hook.sh")
                try writeFile(script, "#!/bin/sh\n/bin/cat > \"$1\"\n", mode: 0o755)
                let prestartOut = env.path("prestart.json")
                let poststopOut = env.path("poststop.json")
                let poststartOut = env.path("poststart.json")
                let bundle = try env.makeBundle(args: ["sleep", "1000"]) { c in
                    c["hooks"] = [
                        "prestart": [["path": script, "args": [script, prestartOut], "env": ["PATH=/usr/bin:/bin"]]],
                        "poststart": [["path": script, "args": [script, poststartOut], "env": ["PATH=/usr/bin:/bin"]]],
                        "poststop": [["path": script, "args": [script, poststopOut], "env": ["PATH=/usr/bin:/bin"]]],
                    ]
                }
                let id = env.newID("hooks")
                _ = try env.startContainer(bundle, id: id)
                let pid = try #require(try env.initPid(id))

                let pre = try #require(readFile(prestartOut), "prestart hook did not run")
                let preState = try #require(parseJSON(pre) as? JSONObject, "prestart stdin is not JSON: \(pre)")
                #expect(preState["id"] as? String == id)
                #expect((preState["pid"] as? NSNumber)?.int32Value == pid, "\(pre)")
                #expect(preState["bundle"] as? String == bundle.path, "\(pre)")
                #expect(!FileManager.default.fileExists(atPath: poststopOut), "poststop ran before delete")
                // poststart runs from `start`, which then reads the whole state (no start hint).
                let postStart = try #require(readFile(poststartOut), "poststart hook did not run")
                let postStartState = try #require(parseJSON(postStart) as? JSONObject, "poststart stdin is not JSON: \(postStart)")
                #expect(postStartState["status"] as? String == "running", "\(postStart)")
                #expect((postStartState["pid"] as? NSNumber)?.int32Value == pid, "\(postStart)")

                try env.cryoOK(["delete", "--force", id])
                let post = try #require(readFile(poststopOut), "poststop hook did not run")
                let postState = try #require(parseJSON(post) as? JSONObject, "poststop stdin is not JSON: \(post)")
                #expect(postState["id"] as? String == id)
                #expect(postState["status"] as? String == "stopped", "\(post)")
            }
        }
    }
}
