@testable import CryoEngine
import CryoLinux
import CryoNetwork
import CryoRuntime
import CryoTestSupport
import FoundationEssentials
import Testing

/// cryod's checkpoint and restore plans, and the checkpoint metadata they travel with —
/// including checkpoints made before the metadata file, with their two sidecars.
@Suite struct CheckpointPlanTests {
    func container(mode: String, networkID: String? = nil) -> StoredContainer {
        var h = HostConfig()
        h.NetworkMode = mode
        var c = StoredContainer(id: String(repeating: "c", count: 64), name: "c", created: "2026-01-01T00:00:00Z", imageRef: "busybox",
                                imageID: "sha256:" + String(repeating: "0", count: 64), config: ContainerConfig(), hostConfig: h,
                                path: "true", args: [])
        c.networkID = networkID
        return c
    }

    func tempDir() throws -> String { try TempDir("cryo-plan").path }

    @Test func networkHandlingPerMode() {
        #expect(Engine.networkHandling(container(mode: "default", networkID: "n1"), criuInside: true) == NetworkHandling(criuInside: true, locker: .cryo))
        #expect(Engine.networkHandling(container(mode: "none"), criuInside: true) == NetworkHandling(criuInside: true, locker: .nobody))
        #expect(Engine.networkHandling(container(mode: "host"), criuInside: true) == NetworkHandling(criuInside: false, locker: .nobody))
    }

    @Test func checkpointPlan() {
        let plan = Engine.checkpointPlan(container(mode: "default", networkID: "n1"), imagePath: "/cp/.x", tcpEstablished: true, leaveRunning: false)
        #expect(plan.imagePath == "/cp/.x")
        #expect(plan.workPath == "/cp/.x")
        #expect(plan.tcpEstablished)
        #expect(!plan.leaveRunning)
        #expect(plan.completionMarker == Engine.checkpointCompleteMarker)
        #expect(plan.cryoLocksBeforeDump)
        #expect(plan.network == NetworkHandling(criuInside: true, locker: .cryo))
        // A page-server socket is already connected: CRIU still works from inside.
        let socket = Engine.checkpointPlan(container(mode: "default", networkID: "n1"), imagePath: "/i", tcpEstablished: false,
                                           leaveRunning: false, pageServer: .socket(fd: 9))
        #expect(socket.cryoLocksBeforeDump)
        #expect(socket.pageServer == .socket(fd: 9))
        // A pre-dump, or a page server by address, has CRIU outside, cryo locking at its notifications.
        let pre = Engine.checkpointPlan(container(mode: "default", networkID: "n1"), imagePath: "/i", tcpEstablished: false,
                                        leaveRunning: true, preDump: true)
        #expect(pre.cryoLocksAtNotification && pre.preDump)
        let byAddress = Engine.checkpointPlan(container(mode: "none"), imagePath: "/i", tcpEstablished: false, leaveRunning: false,
                                              pageServer: .address(host: "192.0.2.1", port: 1))
        #expect(byAddress.network == NetworkHandling(criuInside: false, locker: .nobody))
    }

    @Test func metadataRoundTripDecidesTheRestore() throws {
        let dir = try tempDir()
        defer { try? FS.removeAll(dir) }
        let address = CheckpointNetwork(network: "cryo0", networkID: "n1", ip: "198.18.0.5", ports: nil)
        try CheckpointMetadata(tcpEstablished: true, network: NetworkHandling(criuInside: true, locker: .cryo), address: address).write(into: dir)
        let meta = try CheckpointMetadata.load(dir)
        #expect(meta.address == address)
        let plan = Engine.restorePlan(container(mode: "default", networkID: "n1"), checkpoint: dir, metadata: meta, workPath: "/w",
                                      imagesHoldNetworkNamespace: { Issue.record("the metadata says where CRIU dumped from"); return true })
        #expect(plan.tcpEstablished)
        #expect(plan.network == NetworkHandling(criuInside: true, locker: .cryo))
        #expect(plan.cryoUnlockNotification == "pre-resume")
        #expect(plan.workPath == "/w")
        #expect(plan.networkGateFD == nil)
    }

    @Test func checkpointWithTheOldSidecarsStillRestores() throws {
        let dir = try tempDir()
        defer { try? FS.removeAll(dir) }
        try FS.atomicWrite(dir + "/cryo-options.json", Array(#"{"tcpEstablished":true}"#.utf8), mode: 0o600, durable: false)
        try FS.atomicWrite(dir + "/cryo-network.json",
                           Array(#"{"network":"cryo0","networkID":"n1","ip":"198.18.0.7","ports":[]}"#.utf8), mode: 0o600, durable: false)
        let meta = try CheckpointMetadata.load(dir)
        #expect(meta.tcpEstablished)
        #expect(meta.network == nil)
        #expect(meta.address?.ip == "198.18.0.7")
        // Where CRIU dumped from is read from the images: a network namespace in them, outside.
        let outside = Engine.restorePlan(container(mode: "default", networkID: "n1"), checkpoint: dir, metadata: meta, workPath: "/w",
                                         imagesHoldNetworkNamespace: { true })
        #expect(outside.network == NetworkHandling(criuInside: false, locker: .cryo))
        #expect(outside.cryoUnlockNotification == "network-unlock")
        #expect(outside.tcpEstablished)
        let inside = Engine.restorePlan(container(mode: "none"), checkpoint: dir, metadata: meta, workPath: "/w",
                                        imagesHoldNetworkNamespace: { false })
        #expect(inside.network == NetworkHandling(criuInside: true, locker: .nobody))
    }

    @Test func checkpointWithoutMetadata() throws {
        let dir = try tempDir()
        defer { try? FS.removeAll(dir) }
        let meta = try CheckpointMetadata.load(dir)
        #expect(!meta.tcpEstablished)
        #expect(meta.address == nil)
        try FS.atomicWrite(dir + "/cryo-checkpoint.json", Array("{".utf8), mode: 0o600, durable: false)
        #expect(throws: (any Error).self) { try CheckpointMetadata.load(dir) }
    }
}
