@testable import CryoEngine
import FoundationEssentials
import Testing

/// `--label io.cryo.checkpoint.tcp-established=...` → whether a checkpoint dumps established
/// TCP connections.
@Suite struct CheckpointLabelTests {
    let key = "io.cryo.checkpoint.tcp-established"

    @Test func requestOrLabelTurnsItOn() {
        #expect(!CheckpointLabels.includesTCP(requested: false, labels: nil))
        #expect(!CheckpointLabels.includesTCP(requested: false, labels: ["other": "true"]))
        #expect(CheckpointLabels.includesTCP(requested: true, labels: nil))
        for v in ["true", "TRUE", "1", "yes", "on"] {
            #expect(CheckpointLabels.includesTCP(requested: false, labels: [key: v]), "\(v)")
        }
        for v in ["false", "0", "no", "off", ""] {
            #expect(!CheckpointLabels.includesTCP(requested: false, labels: [key: v]), "\(v)")
        }
        // The label cannot turn off what the request asks for.
        #expect(CheckpointLabels.includesTCP(requested: true, labels: [key: "false"]))
    }

    @Test func createRefusesANonBooleanValue() throws {
        #expect(throws: Never.self) { try CheckpointLabels.validate(nil) }
        #expect(throws: Never.self) { try CheckpointLabels.validate([key: "true"]) }
        if let e = #expect(throws: (any Error).self, performing: { try CheckpointLabels.validate([key: "sometimes"]) }) {
            #expect((e as? EngineError)?.code == .invalidArgument)
            #expect("\(e)".contains(key), "\(e)")
        }
    }

    @Test func labelFromTheDockerCLICreateBody() throws {
        // What `docker run --label io.cryo.checkpoint.tcp-established=true` sends.
        let body = #"{"Image":"redis","Labels":{"io.cryo.checkpoint.tcp-established":"true"},"HostConfig":{}}"#
        let req = try JSONDecoder().decode(CreateContainerRequest.self, from: Data(body.utf8))
        #expect(CheckpointLabels.includesTCP(requested: false, labels: req.config.Labels))
    }
}

/// Where an interrupted checkpoint's images are, for the recovery at start.
@Suite struct PendingOperationTests {
    @Test func incompleteDirectoryIsBesideTheTarget() throws {
        let op = PendingOperation(kind: .checkpoint, checkpoint: "cp1", directory: "/var/lib/cryo/containers/abc/checkpoints/cp1",
                                  leaveRunning: false, began: "2026-01-01T00:00:00Z")
        #expect(op.incompleteDirectory == "/var/lib/cryo/containers/abc/checkpoints/.incomplete-cp1")
        let back = try JSONDecoder().decode(PendingOperation.self, from: try JSONEncoder().encode(op))
        #expect(back == op)
    }
}
