@testable import CryoEngine
import FoundationEssentials
import XCTest

/// `--label io.cryo.checkpoint.tcp-established=...` → whether a checkpoint dumps established
/// TCP connections.
final class CheckpointLabelTests: XCTestCase {
    let key = "io.cryo.checkpoint.tcp-established"

    func testRequestOrLabelTurnsItOn() {
        XCTAssertFalse(CheckpointLabels.includesTCP(requested: false, labels: nil))
        XCTAssertFalse(CheckpointLabels.includesTCP(requested: false, labels: ["other": "true"]))
        XCTAssertTrue(CheckpointLabels.includesTCP(requested: true, labels: nil))
        for v in ["true", "TRUE", "1", "yes", "on"] {
            XCTAssertTrue(CheckpointLabels.includesTCP(requested: false, labels: [key: v]), v)
        }
        for v in ["false", "0", "no", "off", ""] {
            XCTAssertFalse(CheckpointLabels.includesTCP(requested: false, labels: [key: v]), v)
        }
        // The label cannot turn off what the request asks for.
        XCTAssertTrue(CheckpointLabels.includesTCP(requested: true, labels: [key: "false"]))
    }

    func testCreateRefusesANonBooleanValue() {
        XCTAssertNoThrow(try CheckpointLabels.validate(nil))
        XCTAssertNoThrow(try CheckpointLabels.validate([key: "true"]))
        XCTAssertThrowsError(try CheckpointLabels.validate([key: "sometimes"])) { e in
            XCTAssertEqual((e as? EngineError)?.code, .invalidArgument)
            XCTAssertTrue("\(e)".contains(key), "\(e)")
        }
    }

    func testLabelFromTheDockerCLICreateBody() throws {
        // What `docker run --label io.cryo.checkpoint.tcp-established=true` sends.
        let body = #"{"Image":"redis","Labels":{"io.cryo.checkpoint.tcp-established":"true"},"HostConfig":{}}"#
        let req = try JSONDecoder().decode(CreateContainerRequest.self, from: Data(body.utf8))
        XCTAssertTrue(CheckpointLabels.includesTCP(requested: false, labels: req.config.Labels))
    }
}

/// Where an interrupted checkpoint's images are, for the recovery at start.
final class PendingOperationTests: XCTestCase {
    func testIncompleteDirectoryIsBesideTheTarget() throws {
        let op = PendingOperation(kind: .checkpoint, checkpoint: "cp1", directory: "/var/lib/cryo/containers/abc/checkpoints/cp1",
                                  leaveRunning: false, began: "2026-01-01T00:00:00Z")
        XCTAssertEqual(op.incompleteDirectory, "/var/lib/cryo/containers/abc/checkpoints/.incomplete-cp1")
        let back = try JSONDecoder().decode(PendingOperation.self, from: try JSONEncoder().encode(op))
        XCTAssertEqual(back, op)
    }
}
