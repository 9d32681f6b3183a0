import CryoEngine
import CryoHTTP
import FoundationEssentials

/// cryo extensions: new containers from a container's checkpoint or from the running container.
///
/// - `POST /containers/{id}/checkpoints/{name}/clone?name=&network=&ip=&ports=&dir=` → 201
///   `{"Id","Name","Source"}`: checkpoint `name` restored as a new container; the checkpoint stays.
/// - `POST /containers/{id}/fork?name=&network=&ip=&ports=` → 201
///   `{"Id","Name","Source","PauseMs","TimeToRunningMs"}`: the container goes on and a copy starts.
extension APIServer {
    func cloneCheckpoint(_ ex: HTTPExchange, _ ref: String, _ checkpoint: String) async throws {
        let q = ex.request.query
        let opts = try newContainerOptions(q)
        let report = try await engine.cloneCheckpoint(source: ref, checkpoint: checkpoint, dir: try checkpointDir(q["dir"]), opts)
        try await json(ex, 201, report)
    }

    func forkContainer(_ ex: HTTPExchange, _ ref: String) async throws {
        let opts = try newContainerOptions(ex.request.query)
        guard let name = opts.name else { throw EngineError.bad("fork needs the new container's name (?name=)") }
        let report = try await engine.fork(ref, name: name, opts)
        try await json(ex, 201, report)
    }
}
