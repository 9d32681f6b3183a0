// Checkpoint images are interchangeable with runc's: a container runc checkpointed is restored
// by cryo-runtime, and the reverse. Both runtimes use the same kind of bundle (busybox rootfs,
// config.json from `spec`), stdio pipes, and runc's image layout (CRIU images plus
// descriptors.json, which maps the container's fds 0-2 for inherit_fd at restore).

import Foundation
import CryoTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension TestEnv {
    /// A bundle whose config.json is exactly what `runc spec` writes (no cgroup namespace, so
    /// /sys/fs/cgroup is a tmpfs of per-hierarchy binds — external mounts for CRIU), made
    /// non-interactive: terminal false and a counter as the process.
    func makeRuncSpecBundle(_ name: String) throws -> TestBundle {
        let rootfs = try Fixtures.busyboxRootfs.get()
        let b = TestBundle(path: path(name))
        try FileManager.default.createDirectory(atPath: b.path, withIntermediateDirectories: true)
        try Tool.check("/bin/cp", ["-a", rootfs, b.rootfs])
        guard let runc = Harness.runc else { throw HarnessError("runc is not installed") }
        try Tool.check(runc, ["spec", "--bundle", b.path])
        try b.editConfig { c in
            c[path: ["process", "terminal"]] = false
            c[path: ["process", "args"]] = Scripts.counter()
        }
        let c = try b.readConfig()
        let namespaces = (c[path: ["linux", "namespaces"]] as? [JSONObject] ?? []).compactMap { $0["type"] as? String }
        let mounts = (c["mounts"] as? [JSONObject] ?? []).compactMap { $0["type"] as? String }
        guard mounts.contains("cgroup"), !namespaces.contains("cgroup") else {
            throw HarnessError("`runc spec` no longer mounts cgroups without a cgroup namespace: \(c)")
        }
        return b
    }
}

extension CryoIntegration {
    @Suite("runc interop")
    struct RuncInterop {
        @Test("runc checkpoint → cryo-runtime restore")
        func runcToCryo() throws {
            try requireRuntimeCRIUAndRunc()
            try withEnv { env in
                try runcCheckpointCryoRestore(env, bundle: try env.makeBundle(args: Scripts.counter()),
                                              tag: "", what: "cryo-restored runc checkpoint")
            }
        }

        @Test("runc checkpoint → cryo-runtime restore, bundle from `runc spec` (v1 cgroup binds, name=systemd too)")
        func runcToCryoRuncSpec() throws {
            try requireRuntimeCRIUAndRunc()
            try withEnv { env in
                try runcCheckpointCryoRestore(env, bundle: try env.makeRuncSpecBundle("runc-spec"),
                                              tag: "spec-", what: "cryo-restored runc checkpoint of a `runc spec` bundle")
            }
        }

        /// runc runs the bundle's counter and checkpoints it; cryo-runtime restores the images
        /// and the counter must go on from where runc stopped it.
        func runcCheckpointCryoRestore(_ env: TestEnv, bundle: TestBundle, tag: String, what: String) throws {
            let rid = env.newRuncID(tag + "src")
            let l = try env.launchRunc(["run", "--detach", "--bundle", bundle.path, rid])
            let rr = l.result()
            try #require(rr.succeeded, "runc run: \(rr)")
            try #require(l.stdout.waitFor { numbers(in: $0).count >= 5 }, "runc container did not count: \(l.stdout.text) \(l.stderr.text)")

            let image = env.path("image")
            let cp = try env.runc(["checkpoint", "--image-path", image, "--work-path", env.path("runc-work"), rid], timeout: 120)
            try #require(cp.succeeded, "runc checkpoint (environment problem, not cryo): \(cp)")
            #expect(l.stdout.waitForEOF(), "runc container still running after checkpoint")
            let last = try #require(numbers(in: l.stdout.text).last)

            let restored = try env.restoreOK(env.newID(tag + "from-runc"), image: image, bundle: bundle)
            expectCounterContinues(restored.stdout, after: last, what: what)
        }

        @Test("a `runc spec` bundle gets the same /sys/fs/cgroup mounts from both runtimes")
        func runcSpecCgroupMountsMatch() throws {
            try requireRuntimeCRIUAndRunc()
            try withEnv { env in
                let bundle = try env.makeRuncSpecBundle("runc-spec")
                let rid = env.newRuncID("spec-mounts")
                let rr = try env.launchRunc(["run", "--detach", "--bundle", bundle.path, rid]).result()
                try #require(rr.succeeded, "runc run: \(rr)")
                let runcPid = try #require((parseJSON(try env.runc(["state", rid]).stdout) as? JSONObject)?["pid"] as? NSNumber).int32Value
                let runcMounts = cgroupMountPoints(pid: runcPid)
                let c = try env.startContainer(bundle, id: env.newID("spec-mounts"))
                let cryoMounts = cgroupMountPoints(pid: try #require(try env.initPid(c.id)))
                #expect(runcMounts.contains("/sys/fs/cgroup/systemd"), "runc's mounts: \(runcMounts)")
                #expect(cryoMounts == runcMounts, "cryo-runtime's /sys/fs/cgroup mounts differ from runc's")
            }
        }

        @Test("cryo-runtime checkpoint → runc restore, bundle from `runc spec`")
        func cryoToRuncRuncSpec() throws {
            try requireRuntimeCRIUAndRunc()
            try withEnv { env in
                let bundle = try env.makeRuncSpecBundle("runc-spec")
                let c = try env.startContainer(bundle, id: env.newID("spec-src"))
                try #require(c.stdout.waitFor { numbers(in: $0).count >= 5 }, "counter did not start: \(c.stdout.text) \(c.stderr.text)")
                let image = env.path("image")
                try env.checkpointOK(c.id, image: image)
                let last = try lastNumberAfterCheckpoint(c)

                let rid = env.newRuncID("spec-dst")
                let l = try env.launchRunc(["restore", "--image-path", image, "--work-path", env.path("runc-work"),
                                            "--bundle", bundle.path, "--detach", rid])
                let rr = l.result(timeout: 120)
                #expect(rr.succeeded, "runc restore of a cryo-runtime checkpoint: \(rr)\n\(readFile(env.path("runc-work") + "/restore.log")?.split(separator: "\n").filter { $0.contains("Error") }.joined(separator: "\n") ?? "")")
                guard rr.succeeded else { return }
                expectCounterContinues(l.stdout, after: last, what: "runc-restored cryo checkpoint of a `runc spec` bundle")
            }
        }

        @Test("cryo-runtime checkpoint → cryo-runtime restore, bundle from `runc spec`")
        func cryoToCryoRuncSpec() throws {
            try requireRuntimeCRIUAndRunc()
            try withEnv { env in
                let bundle = try env.makeRuncSpecBundle("runc-spec")
                let c = try env.startContainer(bundle, id: env.newID("spec-src"))
                try #require(c.stdout.waitFor { numbers(in: $0).count >= 5 }, "counter did not start: \(c.stdout.text) \(c.stderr.text)")
                let image = env.path("image")
                try env.checkpointOK(c.id, image: image)
                let last = try lastNumberAfterCheckpoint(c)

                let restored = try env.restoreOK(env.newID("spec-dst"), image: image, bundle: bundle)
                expectCounterContinues(restored.stdout, after: last, what: "cryo-restored cryo checkpoint of a `runc spec` bundle")
            }
        }

        @Test("cryo-runtime checkpoint → runc restore")
        func cryoToRunc() throws {
            try requireRuntimeCRIUAndRunc()
            try withEnv { env in
                let c = try env.startCounter("src")
                let image = env.path("image")
                try env.checkpointOK(c.id, image: image)
                let last = try lastNumberAfterCheckpoint(c)
                #expect(FileManager.default.fileExists(atPath: image + "/descriptors.json"),
                        "runc needs descriptors.json in the image directory to restore stdio")

                let rid = env.newRuncID("dst")
                let l = try env.launchRunc(["restore", "--image-path", image, "--work-path", env.path("runc-work"),
                                            "--bundle", c.bundle.path, "--detach", rid])
                let rr = l.result(timeout: 120)
                #expect(rr.succeeded, "runc restore of a cryo-runtime checkpoint: \(rr)\n\(readFile(env.path("runc-work") + "/restore.log")?.split(separator: "\n").filter { $0.contains("Error") }.joined(separator: "\n") ?? "")")
                guard rr.succeeded else { return }
                let st = try env.runc(["state", rid])
                #expect((parseJSON(st.stdout) as? JSONObject)?["status"] as? String == "running", "\(st)")
                expectCounterContinues(l.stdout, after: last, what: "runc-restored cryo checkpoint")
            }
        }
    }
}

/// The mount points at and under /sys/fs/cgroup in process `pid`'s mount namespace, sorted.
func cgroupMountPoints(pid: Int32) -> [String] {
    let text = readFile("/proc/\(pid)/mountinfo") ?? ""
    return text.split(separator: "\n").compactMap { line -> String? in
        let f = line.split(separator: " ")
        guard f.count > 4, f[4] == "/sys/fs/cgroup" || f[4].hasPrefix("/sys/fs/cgroup/") else { return nil }
        return String(f[4])
    }.sorted()
}
