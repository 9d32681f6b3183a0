import CryoCheckpointInspect
import CryoLinux
import CryoRuntime
import Glibc

extension Engine {
    /// `cryo checkpoint check`: a dry run, nothing is frozen or dumped. CRIU has no dump
    /// dry run (`criu check` tests the kernel, not a process tree; `--leave-running` still
    /// dumps), so cryo looks at what CRIU would refuse itself (CheckpointabilityScan) and
    /// at the installed CRIU's version.
    public func checkCheckpoint(_ ref: String) async throws -> CheckpointCheck {
        let c = try resolve(ref)
        guard c.isRunning else { throw EngineError.conflict("container \(c.name) is not running: only a running container is checkpointed") }
        let cgroup = Cgroup(path: options.cgroupParent + "/" + c.id)
        return try await blocking {
            let pids = cgroup.pids().sorted()
            guard !pids.isEmpty else { throw EngineError.conflict("container \(c.name) has no processes in its cgroup") }
            var problems: [CheckpointProblem] = []
            var version: String?
            do {
                version = try MigrationChecks.criuVersion(criu: try MigrationChecks.criuPath())
            } catch {
                problems.append(CheckpointProblem(pid: nil, comm: nil, kind: "criu", resource: "CRIU", reason: "CRIU is not usable: \(error)"))
            }
            if let v = version, Self.versionLess(v, than: [4, 2]) {
                problems.append(CheckpointProblem(pid: nil, comm: nil, kind: "criu", resource: "CRIU \(v)",
                                                  reason: "cryo needs CRIU 4.2 or later on this kernel (older ones cannot dump TCP sockets on Linux 6.16+)"))
            }
            let scan = CheckpointabilityScan.scan(pids: pids)
            return CheckpointCheck(container: c.name, criuVersion: version, pids: pids.map { Int32($0) }, problems: problems + scan.problems,
                                   notes: scan.notes)
        }
    }

    nonisolated static func versionLess(_ v: String, than minimum: [Int]) -> Bool {
        let parts = v.split(separator: ".").map { Int($0) ?? 0 }
        for (i, m) in minimum.enumerated() {
            let p = i < parts.count ? parts[i] : 0
            if p != m { return p < m }
        }
        return false
    }
}
