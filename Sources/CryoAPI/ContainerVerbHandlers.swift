import CryoEngine
import CryoHTTP
import CryoLinux
import FoundationEssentials
import Glibc

/// The everyday verbs of issue 13: top, rename, diff (changes), container prune, update.
extension APIServer {
    /// `GET /containers/{id}/top?ps_args=-ef` → {"Titles": [...], "Processes": [[...]]}.
    func topContainer(_ ex: HTTPExchange, _ ref: String) async throws {
        let table = try await engine.top(ref, psArgs: ex.request.query["ps_args"])
        try await json(ex, 200, table)
    }

    /// `POST /containers/{id}/rename?name=NEW` → 204; 409 when the name is taken.
    func renameContainer(_ ex: HTTPExchange, _ ref: String) async throws {
        guard let name = ex.request.query["name"], !name.isEmpty else { throw EngineError.bad("Neither old nor new names may be empty") }
        try await engine.renameContainer(ref, to: name)
        try await noContent(ex)
    }

    /// `GET /containers/{id}/changes` → [{"Path", "Kind"}] (0 modified, 1 added, 2 deleted).
    func containerChanges(_ ex: HTTPExchange, _ ref: String) async throws {
        try await json(ex, 200, try await engine.diff(ref))
    }

    /// `POST /containers/prune?filters=…` → {"ContainersDeleted": [...], "SpaceReclaimed": N}.
    func pruneContainers(_ ex: HTTPExchange) async throws {
        let filter = try PruneFilter.parse(ex.request.query["filters"], now: Double(time(nil)))
        try await json(ex, 200, try await engine.prune(filter))
    }
}

extension APIServer {
    /// `POST /containers/{id}/update` (body: the resources to change) → {"Warnings": []}.
    func updateContainer(_ ex: HTTPExchange, _ ref: String) async throws {
        guard let u = try await body(ex, ContainerUpdate.self) else { return }
        struct R: Encodable { var Warnings: [String] }
        try await json(ex, 200, R(Warnings: try await engine.update(ref, u)))
    }
}
