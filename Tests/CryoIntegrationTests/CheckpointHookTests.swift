// Runtime.checkpoint called in-process with a plan and hooks (what cryod's migration does):
// the parts of a plan the command line cannot express.

import CryoRuntime
import Foundation
import CryoTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension CryoIntegration {
    @Suite("Checkpoint hooks")
    struct CheckpointHookTests {
        struct Refused: Error {}

        @Test("a post-dump hook that throws: CRIU resumes the container, and nothing passes for a complete checkpoint")
        func postDumpHookThrows() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let c = try env.startCounter("hook")
                let pid = try #require(try env.initPid(c.id))
                let image = env.path("image")
                var plan = CheckpointPlan(imagePath: image, network: .runc(lock: nil, emptyNamespace: false))
                plan.completionMarker = "cryo-complete"
                let hooks = CheckpointHooks(atPostDump: { throw Refused() })
                #expect(throws: (any Error).self) {
                    try Runtime(root: env.stateRoot).checkpoint(id: c.id, plan: plan, hooks: hooks)
                }
                #expect(!FileManager.default.fileExists(atPath: image + "/cryo-complete"), "the completion marker outlived the NACK")
                #expect(!FileManager.default.fileExists(atPath: image + "/inventory.img"), "a failed dump left an inventory")
                #expect(try env.status(c.id) == "running")
                #expect(try env.initPid(c.id) == pid && isRunning(pid: pid), "init \(pid) did not survive the NACKed dump")
                let at = numbers(in: c.stdout.text).last ?? -1
                #expect(c.stdout.waitFor { (numbers(in: $0).last ?? -1) > at + 3 }, "the counter stopped: \(c.stdout.text.suffix(200))")
            }
        }
    }
}
