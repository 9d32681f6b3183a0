import CryoCheckpointInspect
import CryoLinux
import Glibc

extension Engine {
    /// `cryo checkpoint inspect`: what a checkpoint holds, read from CRIU's images by
    /// `CheckpointInspector` (no CRIU involved). The name is checked like every checkpoint
    /// name and the place found as for `rm`, so nothing outside the container's checkpoints
    /// (or a checked `--checkpoint-dir`) is read. Environment variables only when asked; a
    /// memory search (checked before anything is read) when asked.
    public func inspectCheckpoint(_ ref: String, name: String, dir: String?, environment: Bool,
                                  search: MemorySearch.Pattern? = nil, context: Int = 32) async throws -> CheckpointInspection {
        try Names.validateCheckpoint(name)
        if let search {
            do { try MemorySearch.validate(search) } catch let e as InspectError { throw EngineError.bad(e.message) }
        }
        let c = try resolve(ref)
        return try await blocking {
            let source = try self.checkpointPath(c.id, name: name, dir: dir)
            guard FS.lstatMode(source) == S_IFDIR, FS.lstatMode(source + "/inventory.img") == S_IFREG else {
                throw EngineError(.notFound, "checkpoint \(name) does not exist for container \(c.name)")
            }
            do {
                return try CheckpointInspector.inspect(directory: source, statsFile: source + "/stats-dump", environment: environment,
                                                      search: search, context: context)
            } catch let e as InspectError {
                throw EngineError.internalError("inspect checkpoint \(name) of container \(c.name): \(e.message)")
            }
        }
    }
}
