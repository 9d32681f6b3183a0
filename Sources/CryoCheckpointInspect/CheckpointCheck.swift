/// `cryo checkpoint check CONTAINER`: whether a running container can be checkpointed, and if
/// not, why, in plain words, before anyone relies on a checkpoint. The JSON of
/// `GET /containers/{id}/checkpoint/check` and of `--format json`.
public struct CheckpointCheck: Codable, Sendable, Equatable {
    public var container: String
    public var checkpointable: Bool
    /// The installed CRIU's version ("4.2.1"), nil when `criu --version` gave none.
    public var criuVersion: String?
    /// Host pids of the container's processes that were looked at.
    public var pids: [Int32]
    /// Every reason a checkpoint would fail; empty when it can be checkpointed.
    public var problems: [CheckpointProblem]
    /// What is worth knowing but does not stop a checkpoint (a terminal, which cryo hands to
    /// CRIU as an orphan pts master).
    public var notes: [CheckpointProblem]

    public init(container: String, criuVersion: String?, pids: [Int32], problems: [CheckpointProblem], notes: [CheckpointProblem] = []) {
        (self.container, self.criuVersion, self.pids, self.problems, self.notes) = (container, criuVersion, pids, problems, notes)
        checkpointable = problems.isEmpty
    }
}

/// One thing that stops a checkpoint: which process (host pid and comm; nil for the CRIU
/// version), which resource (an fd's target, a mapping), and why.
public struct CheckpointProblem: Codable, Sendable, Equatable {
    public var pid: Int32?
    public var comm: String?
    public var fd: Int32?
    /// io_uring, external-unix-socket, host-file, device, unsupported-file, criu; terminal (a note).
    public var kind: String
    public var resource: String
    public var reason: String

    public init(pid: Int32?, comm: String?, fd: Int32? = nil, kind: String, resource: String, reason: String) {
        (self.pid, self.comm, self.fd, self.kind, self.resource, self.reason) = (pid, comm, fd, kind, resource, reason)
    }
}

public enum CheckpointCheckText {
    public static func render(_ c: CheckpointCheck) -> String {
        var o = "container \(c.container): " + (c.checkpointable ? "can be checkpointed" : "cannot be checkpointed") + "\n"
        o += "  CRIU \(c.criuVersion ?? "(version unknown)"), \(c.pids.count) process\(c.pids.count == 1 ? "" : "es") looked at\n"
        for p in c.problems {
            guard let pid = p.pid else { o += "  cannot: \(p.resource): \(p.reason)\n"; continue }
            o += "  cannot: process \(pid) (\(p.comm ?? "?"))" + (p.fd.map { " fd \($0)" } ?? "") + " holds \(p.resource): \(p.reason)\n"
        }
        for p in c.notes {
            o += "  note: process \(p.pid.map(String.init) ?? "?") (\(p.comm ?? "?"))" + (p.fd.map { " fd \($0)" } ?? "")
                + " holds \(p.resource): \(p.reason)\n"
        }
        return o
    }
}
