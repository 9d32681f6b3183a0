// Checkpoint images are interchangeable with runc's: a container runc checkpointed is restored
// by cryo-runtime, and the reverse. Both runtimes use the same kind of bundle (busybox rootfs,
// config.json from `spec`), stdio pipes, and runc's image layout (CRIU images plus
// descriptors.json, which maps the container's fds 0-2 for inherit_fd at restore).

import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension CryoIntegration {
    @Suite("runc interop")
    struct RuncInterop {
        @Test("runc checkpoint → cryo-runtime restore")
        func runcToCryo() throws {
            guard requireRootCRIUAndRunc() else { return }
            try withEnv { env in
                let bundle = try env.makeBundle(args: Scripts.counter())
                let rid = env.newRuncID("src")
                let l = try env.launchRunc(["run", "--detach", "--bundle", bundle.path, rid])
                let rr = l.result()
                try #require(rr.succeeded, "runc run: \(rr)")
                try #require(l.stdout.waitFor { numbers(in: $0).count >= 5 }, "runc container did not count: \(l.stdout.text) \(l.stderr.text)")

                let image = env.path("image")
                let cp = try env.runc(["checkpoint", "--image-path", image, rid], timeout: 120)
                try #require(cp.succeeded, "runc checkpoint (environment problem, not cryo): \(cp)")
                #expect(l.stdout.waitForEOF(), "runc container still running after checkpoint")
                let last = try #require(numbers(in: l.stdout.text).last)

                let restored = try env.restoreOK(env.newID("from-runc"), image: image, bundle: bundle)
                expectCounterContinues(restored.stdout, after: last, what: "cryo-restored runc checkpoint")
            }
        }

        @Test("cryo-runtime checkpoint → runc restore")
        func cryoToRunc() throws {
            guard requireRootCRIUAndRunc() else { return }
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
