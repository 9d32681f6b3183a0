@testable import CryoEngine
import CryoLinux
import CryoNetwork
import CryoRuntime
import FoundationEssentials
import XCTest

/// cryod's checkpoint and restore plans, and the checkpoint metadata they travel with —
/// including checkpoints made before the metadata file, with their two sidecars.
final class CheckpointPlanTests: XCTestCase {
    func container(mode: String, networkID: String? = nil) -> StoredContainer {
        var h = HostConfig()
        h.NetworkMode = mode
        var c = StoredContainer(id: String(repeating: "c", count: 64), name: "c", created: "2026-01-01T00:00:00Z", imageRef: "busybox",
                                imageID: "sha256:" + String(repeating: "0", count: 64), config: ContainerConfig(), hostConfig: h,
                                path: "true", args: [])
        c.networkID = networkID
        return c
    }

    func tempDir() throws -> String {
        var template = Array("/tmp/cryo-plan.XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!).map { String(cString: $0) } }
        return try XCTUnwrap(made)
    }

    func testNetworkHandlingPerMode() {
        XCTAssertEqual(Engine.networkHandling(container(mode: "default", networkID: "n1"), criuInside: true),
                       NetworkHandling(criuInside: true, locker: .cryo))
        XCTAssertEqual(Engine.networkHandling(container(mode: "none"), criuInside: true),
                       NetworkHandling(criuInside: true, locker: .nobody))
        XCTAssertEqual(Engine.networkHandling(container(mode: "host"), criuInside: true),
                       NetworkHandling(criuInside: false, locker: .nobody))
    }

    func testCheckpointPlan() {
        let plan = Engine.checkpointPlan(container(mode: "default", networkID: "n1"), imagePath: "/cp/.x", tcpEstablished: true, leaveRunning: false)
        XCTAssertEqual(plan.imagePath, "/cp/.x")
        XCTAssertEqual(plan.workPath, "/cp/.x")
        XCTAssertTrue(plan.tcpEstablished)
        XCTAssertFalse(plan.leaveRunning)
        XCTAssertEqual(plan.completionMarker, Engine.checkpointCompleteMarker)
        XCTAssertTrue(plan.cryoLocksBeforeDump)
        XCTAssertEqual(plan.network, NetworkHandling(criuInside: true, locker: .cryo))
        // A page-server socket is already connected: CRIU still works from inside.
        let socket = Engine.checkpointPlan(container(mode: "default", networkID: "n1"), imagePath: "/i", tcpEstablished: false,
                                           leaveRunning: false, pageServer: .socket(fd: 9))
        XCTAssertTrue(socket.cryoLocksBeforeDump)
        XCTAssertEqual(socket.pageServer, .socket(fd: 9))
        // A pre-dump, or a page server by address, has CRIU outside, cryo locking at its notifications.
        let pre = Engine.checkpointPlan(container(mode: "default", networkID: "n1"), imagePath: "/i", tcpEstablished: false,
                                        leaveRunning: true, preDump: true)
        XCTAssertTrue(pre.cryoLocksAtNotification && pre.preDump)
        let byAddress = Engine.checkpointPlan(container(mode: "none"), imagePath: "/i", tcpEstablished: false, leaveRunning: false,
                                              pageServer: .address(host: "192.0.2.1", port: 1))
        XCTAssertEqual(byAddress.network, NetworkHandling(criuInside: false, locker: .nobody))
    }

    func testMetadataRoundTripDecidesTheRestore() throws {
        let dir = try tempDir()
        defer { try? FS.removeAll(dir) }
        let address = CheckpointNetwork(network: "cryo0", networkID: "n1", ip: "198.18.0.5", ports: nil)
        try CheckpointMetadata(tcpEstablished: true, network: NetworkHandling(criuInside: true, locker: .cryo), address: address).write(into: dir)
        let meta = try CheckpointMetadata.load(dir)
        XCTAssertEqual(meta.address, address)
        let plan = Engine.restorePlan(container(mode: "default", networkID: "n1"), checkpoint: dir, metadata: meta, workPath: "/w",
                                      imagesHoldNetworkNamespace: { XCTFail("the metadata says where CRIU dumped from"); return true })
        XCTAssertTrue(plan.tcpEstablished)
        XCTAssertEqual(plan.network, NetworkHandling(criuInside: true, locker: .cryo))
        XCTAssertEqual(plan.cryoUnlockNotification, "pre-resume")
        XCTAssertEqual(plan.workPath, "/w")
        XCTAssertNil(plan.networkGateFD)
    }

    func testCheckpointWithTheOldSidecarsStillRestores() throws {
        let dir = try tempDir()
        defer { try? FS.removeAll(dir) }
        try FS.atomicWrite(dir + "/cryo-options.json", Array(#"{"tcpEstablished":true}"#.utf8), mode: 0o600, durable: false)
        try FS.atomicWrite(dir + "/cryo-network.json",
                           Array(#"{"network":"cryo0","networkID":"n1","ip":"198.18.0.7","ports":[]}"#.utf8), mode: 0o600, durable: false)
        let meta = try CheckpointMetadata.load(dir)
        XCTAssertTrue(meta.tcpEstablished)
        XCTAssertNil(meta.network)
        XCTAssertEqual(meta.address?.ip, "198.18.0.7")
        // Where CRIU dumped from is read from the images: a network namespace in them, outside.
        let outside = Engine.restorePlan(container(mode: "default", networkID: "n1"), checkpoint: dir, metadata: meta, workPath: "/w",
                                         imagesHoldNetworkNamespace: { true })
        XCTAssertEqual(outside.network, NetworkHandling(criuInside: false, locker: .cryo))
        XCTAssertEqual(outside.cryoUnlockNotification, "network-unlock")
        XCTAssertTrue(outside.tcpEstablished)
        let inside = Engine.restorePlan(container(mode: "none"), checkpoint: dir, metadata: meta, workPath: "/w",
                                        imagesHoldNetworkNamespace: { false })
        XCTAssertEqual(inside.network, NetworkHandling(criuInside: true, locker: .nobody))
    }

    func testCheckpointWithoutMetadata() throws {
        let dir = try tempDir()
        defer { try? FS.removeAll(dir) }
        let meta = try CheckpointMetadata.load(dir)
        XCTAssertFalse(meta.tcpEstablished)
        XCTAssertNil(meta.address)
        try FS.atomicWrite(dir + "/cryo-checkpoint.json", Array("{".utf8), mode: 0o600, durable: false)
        XCTAssertThrowsError(try CheckpointMetadata.load(dir))
    }
}
