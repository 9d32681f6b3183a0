import CryoLinux
import CryoRuntime
import FoundationEssentials
import Glibc

extension Engine {
    /// `docker top`: the host's `ps` with the client's arguments (default `-ef`), rows kept
    /// for the container's processes (its cgroup's pids) — what dockerd does.
    public func top(_ ref: String, psArgs: String?) async throws -> ProcessTable {
        let c = try resolve(ref)
        guard c.isRunning else { throw EngineError.conflict("container \(c.name) is not running") }
        let args = (psArgs?.isEmpty == false ? psArgs! : "-ef").split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        let cgroup = Cgroup(path: options.cgroupParent + "/" + c.id)
        return try await blocking {
            let pids = Set(cgroup.pids())
            let run = try Spawn.run(path: "/usr/bin/ps", args: ["ps"] + args, env: ["PATH=/usr/bin:/bin", "LC_ALL=C"], timeoutMs: 30_000)
            guard run.status == 0, !run.timedOut else {
                throw EngineError.bad("ps \(args.joined(separator: " ")) failed (exit \(run.status)): \(run.stderrString.trimmed)")
            }
            return try ProcessTable.parse(run.stdoutString, pids: pids)
        }
    }
}
