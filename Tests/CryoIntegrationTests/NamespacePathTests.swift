// Namespaces joined by path (how CNI and podman hand a container its network) must stay
// external in a checkpoint and be rejoined at restore; and the kernel's missing soft-dirty
// tracking must be reported for pre-dumps.

import Foundation
import CryoTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Inode of a namespace file (e.g. /run/netns/X or /proc/PID/ns/net).
private func nsInode(_ path: String) -> UInt64? {
    var st = stat()
    return stat(path, &st) == 0 ? UInt64(st.st_ino) : nil
}

extension CryoIntegration {
    @Suite("Namespaces joined by path")
    struct NamespacePaths {
        @Test("a container in a named network namespace is restored into the same namespace")
        func networkNamespaceByPath() throws {
            try requireRuntimeAndCRIU()
            try withEnv { env in
                let name = "cryo-it-\(UInt32.random(in: 0..<UInt32.max))"
                let add = try Tool.run("/usr/sbin/ip", ["netns", "add", name])
                try #require(add.succeeded, "ip netns add: \(add)")
                defer { _ = try? Tool.run("/usr/sbin/ip", ["netns", "del", name]) }
                let nsPath = "/run/netns/\(name)"
                let want = try #require(nsInode(nsPath))

                let c = try env.startCounter("netns") { config in
                    var linux = config["linux"] as? JSONObject ?? [:]
                    var nss = (linux["namespaces"] as? [JSONObject] ?? []).filter { $0["type"] as? String != "network" }
                    nss.append(["type": "network", "path": nsPath])
                    linux["namespaces"] = nss
                    config["linux"] = linux
                }
                let pid = try #require(try env.initPid(c.id))
                #expect(nsInode("/proc/\(pid)/ns/net") == want, "container is not in \(nsPath)")

                let image = env.path("image")
                try env.checkpointOK(c.id, image: image)
                let last = try lastNumberAfterCheckpoint(c)
                let r = try env.restoreOK(env.newID("netns-r"), image: image, bundle: c.bundle)
                expectCounterContinues(r.stdout, after: last)
                let rpid = try #require(try env.initPid(r.id))
                #expect(nsInode("/proc/\(rpid)/ns/net") == want, "restored container is not back in \(nsPath)")
            }
        }

        @Test("pre-dump is refused with the reason when the kernel has no soft-dirty tracking")
        func preDumpNeedsSoftDirty() throws {
            try requireRuntimeAndCRIU()
            // This machine's kernel has CONFIG_MEM_SOFT_DIRTY off (DESIGN.md); if a kernel
            // has it, pre-dump must instead succeed and leave the container running.
            let softDirty = (try? Tool.run(findExecutable("criu") ?? "criu", ["check", "--feature", "mem_dirty_track"]))?.succeeded ?? false
            try withEnv { env in
                let c = try env.startCounter("predump")
                let r = try env.checkpoint(c.id, image: env.path("pre"), extra: ["--pre-dump"])
                if softDirty {
                    #expect(r.succeeded, "\(r)")
                } else {
                    #expect(!r.succeeded, "pre-dump should be refused: \(r)")
                    #expect(r.stderr.contains("soft-dirty"), "the error should say why: \(r)")
                }
                #expect(try env.status(c.id) == "running", "the container must keep running")
                let parent = try env.checkpoint(c.id, image: env.path("full"), extra: ["--parent-path", "../pre"])
                if !softDirty {
                    #expect(!parent.succeeded && parent.stderr.contains("soft-dirty"), "\(parent)")
                    #expect(try env.status(c.id) == "running")
                }
            }
        }
    }
}
