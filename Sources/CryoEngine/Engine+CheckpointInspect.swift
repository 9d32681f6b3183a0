import CryoCheckpointInspect
import CryoLinux
import FoundationEssentials
import Glibc

extension Engine {
    /// `cryo checkpoint inspect`: what a checkpoint holds, read from CRIU's images by
    /// `CheckpointInspector` (no CRIU involved). The name is checked like every checkpoint
    /// name and the place found as for `rm`, so nothing outside the container's checkpoints
    /// (or a checked `--checkpoint-dir`) is read. Environment variables only when asked; a
    /// memory search (checked before anything is read) when asked, within its time budget.
    public func inspectCheckpoint(_ ref: String, name: String, dir: String?, environment: Bool,
                                  search: MemorySearch.Pattern? = nil, context: Int = 32) async throws -> CheckpointInspection {
        try Names.validateCheckpoint(name)
        if let search {
            do { try MemorySearch.validate(search) } catch let e as InspectError { throw EngineError.bad(e.message) }
        }
        let c = try resolve(ref)
        let monitor = monitorBinary
        return try await blocking {
            let source = try self.checkpointPath(c.id, name: name, dir: dir)
            guard FS.lstatMode(source) == S_IFDIR, FS.lstatMode(source + "/inventory.img") == S_IFREG else {
                throw EngineError(.notFound, "checkpoint \(name) does not exist for container \(c.name)")
            }
            var result: CheckpointInspection
            do {
                result = try CheckpointInspector.inspect(directory: source, statsFile: source + "/stats-dump", environment: environment)
            } catch let e as InspectError {
                throw EngineError.internalError("inspect checkpoint \(name) of container \(c.name): \(e.message)")
            }
            if let search {
                let request = MemorySearchRequest(directory: source, processes: result.processes, pattern: search, context: context)
                let found = try Self.searchMemory(request, monitor: monitor)
                result.matches = found
                result.matchesTruncated = found.count >= request.limit
            }
            return result
        }
    }

    /// A literal search runs here (linear, checked against its budget between pieces); a regex
    /// search runs in `cryo-monitor memory-search`, killed when the budget (plus a grace for
    /// a clean stop) runs out, since Swift's Regex cannot be stopped inside one match.
    nonisolated static func searchMemory(_ request: MemorySearchRequest, monitor: String) throws -> [MemoryMatch] {
        guard case .regex = request.pattern else {
            do { return try request.run() } catch let e as InspectError { throw EngineError.bad(e.message) }
        }
        let input = Array(try JSONEncoder().encode(request))
        let run = try Spawn.run(path: monitor, args: ["cryo-monitor", "memory-search"], env: [], input: input,
                                timeoutMs: Int32(request.budgetSeconds * 1000 + 2000))
        if run.timedOut { throw EngineError.bad(MemorySearch.stopped(after: request.budgetSeconds, request.pattern).message) }
        guard run.status == 0 else {
            let why = run.stderrString.trimmingCharacters(in: .whitespacesAndNewlines)
            if run.status == 2 && why.hasPrefix("search stopped after") { throw EngineError.bad(why) }
            throw EngineError.internalError("memory search (\(monitor) memory-search) exited with status \(run.status): \(why)")
        }
        do { return try JSONDecoder().decode([MemoryMatch].self, from: Data(run.stdout)) } catch {
            throw EngineError.internalError("memory search (\(monitor) memory-search): unreadable result: \(error)")
        }
    }
}
