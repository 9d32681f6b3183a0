// --manage-cgroups-mode: with `ignore` CRIU leaves cgroups alone and cryo-runtime moves the
// CRIU worker into the container's cgroups so the restored tasks start there; with the
// default (soft) CRIU places them through cg_root. Either way the restored container must
// end up in its own cgroup.

import Foundation
import CryoTestSupport
import Testing

extension CryoIntegration {
    @Suite("cgroups across restore")
    struct CgroupModes {
        /// The memory-controller cgroup of a pid, as /proc/PID/cgroup lists it.
        static func memoryCgroup(_ pid: Int32) -> String? {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8) else { return nil }
            for line in text.split(separator: "\n") {
                let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                if f.count == 3, f[1].split(separator: ",").contains("memory") { return String(f[2]) }
            }
            return nil
        }

        @Test("restored tasks land in the new container's cgroup", arguments: ["soft", "ignore"])
        func restoredIntoOwnCgroup(mode: String) throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let c = try env.startCounter("cg-\(mode)")
                let image = env.path("image")
                let r = try env.checkpoint(c.id, image: image, extra: ["--manage-cgroups-mode", mode])
                try #require(r.succeeded, "\(r)")
                let last = try lastNumberAfterCheckpoint(c)
                let id2 = env.newID("cg-\(mode)-r")
                env.trackCgroup("/cryo/\(id2)")
                let (restored, rr) = try env.launchRestore(id2, image: image, bundle: c.bundle, extra: ["--manage-cgroups-mode", mode])
                try #require(rr.succeeded, "\(rr)")
                expectCounterContinues(restored.stdout, after: last)
                let pid = try #require(try env.initPid(id2))
                #expect(Self.memoryCgroup(pid) == "/cryo/\(id2)", "restored init is in \(Self.memoryCgroup(pid) ?? "?")")
                #expect(try env.psPids(id2).contains(pid))
            }
        }

        @Test("an unknown --manage-cgroups-mode is refused and the container keeps running")
        func badMode() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let c = try env.startCounter("cg-bad")
                let r = try env.checkpoint(c.id, image: env.path("image"), extra: ["--manage-cgroups-mode", "sometimes"])
                #expect(!r.succeeded && r.stderr.contains("manage-cgroups-mode"), "\(r)")
                #expect(try env.status(c.id) == "running")
            }
        }
    }
}
