import CryoArchive
import CryoEngine
import CryoHTTP
import CryoLinux
import CryoRegistry
import FoundationEssentials

/// cryo extensions: checkpoints as OCI images in a registry (CRI-O's form).
///
/// - `POST /containers/{id}/checkpoints/{name}/push?ref=REF&dir=` (credentials in
///   X-Registry-Auth, as `/images/{name}/push`) → the push's progress stream.
/// - `POST /containers/restore?image=REF&name=&network=&ip=&ports=` (no body) → 201
///   `{"Id","Name","Verified","Source"}`, as an archive import.
extension APIServer {
    func pushCheckpoint(_ ex: HTTPExchange, _ container: String, _ name: String) async throws {
        let q = ex.request.query
        guard let raw = q["ref"], !raw.isEmpty else {
            throw EngineError.bad("ref: the image reference to push the checkpoint to is required (e.g. registry:5000/repo:tag)")
        }
        var ref = try RegistryReference.parse(raw)
        guard ref.digest == nil else { throw EngineError.bad("ref \(raw): push to a tag, not a digest (the registry computes the digest)") }
        if ref.tag == nil { ref.tag = "latest" }
        let credentials = RegistryCredentials.fromHeader(ex.request.header("X-Registry-Auth"))
        // Packed before the stream starts: an unknown container or checkpoint is an HTTP error.
        let (packed, scratch) = try await engine.packCheckpointImage(container, name: name, dir: try checkpointDir(q["dir"]),
                                                                     engineVersion: Self.engineVersion)
        defer { engine.discardPacked(scratch) }
        let stream = ProgressStream(ex)
        do {
            try await ImagePusher(client: registry).push(packed, as: ref, credentials: credentials) { line in try await stream.send(line) }
        } catch {
            guard stream.started else { throw error }
            try? await stream.send(.failure("\(HTTPStatus.failure(error))"))
        }
        if stream.started { try? await ex.finish() }
    }

    /// `restore?image=REF`: the image's checkpoint layer, fetched and verified, imported as
    /// an archive would be.
    func restoreCheckpointImage(_ ex: HTTPExchange, image raw: String) async throws {
        if let length = ex.request.header("Content-Length"), length != "0" {
            throw EngineError.bad("restore with image=\(raw) takes no body: send either a checkpoint archive as the body or image=, not both")
        }
        if ex.request.header("Transfer-Encoding") != nil {
            throw EngineError.bad("restore with image=\(raw) takes no body: send either a checkpoint archive as the body or image=, not both")
        }
        var ref = try RegistryReference.parse(raw)
        if ref.tag == nil && ref.digest == nil { ref.tag = "latest" }
        let opts = try newContainerOptions(ex.request.query)
        let credentials = RegistryCredentials.fromHeader(ex.request.header("X-Registry-Auth"))
        let fetcher = CheckpointImageFetcher(client: registry)
        let limit = engine.images.extractionBudget().limit
        let pulled = ref
        let report = try await engine.restoreCheckpointImage(opts) { scratch in
            try await fetcher.fetch(pulled, credentials: credentials, into: scratch, limit: limit).layer
        }
        try await json(ex, 201, report)
    }
}
