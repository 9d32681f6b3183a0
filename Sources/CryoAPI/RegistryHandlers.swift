import CryoEngine
import CryoHTTP
import CryoImages
import CryoLinux
import CryoRegistry
import FoundationEssentials
import NIOConcurrencyHelpers

extension APIServer {
    /// `docker pull` (`POST /images/create?fromImage=…&tag=…[&platform=…]`). Failures before
    /// the manifest is known (a bad reference, auth, an unknown tag, an unreachable registry)
    /// are HTTP errors; once the stream has started they are `errorDetail` lines.
    func pullImage(_ ex: HTTPExchange, from image: String) async throws {
        let q = ex.request.query
        let ref = try RegistryReference.pullQuery(image: image, tag: q["tag"])
        let platform = try q["platform"].flatMap { $0.isEmpty ? nil : $0 }.map(PlatformSpec.parse) ?? .host
        let credentials = RegistryCredentials.fromHeader(ex.request.header("X-Registry-Auth"))
        let stream = ProgressStream(ex)
        let puller = ImagePuller(client: registry, store: engine.images)
        do {
            let image = try await puller.pull(ref, platform: platform, credentials: credentials) { line in try await stream.send(line) }
            engine.events.emit("image", "pull", id: image.id.description, attributes: ["name": ref.description])
        } catch {
            guard stream.started else { throw error }
            try? await stream.send(.failure("\(HTTPStatus.failure(error))"))
        }
        if stream.started { try? await ex.finish() }
    }

    /// `docker push` (`POST /images/{name}/push?tag=…`, credentials in X-Registry-Auth): the
    /// image `name:tag` (every tag of `name` when `tag` is empty) to its registry. Failures
    /// before the first line (no such image, auth) are HTTP errors, later ones error lines.
    func pushImage(_ ex: HTTPExchange, _ name: String) async throws {
        let tag = ex.request.query["tag"] ?? ""
        let repo = try RegistryReference.parse(name)
        guard repo.digest == nil, repo.tag == nil else { throw EngineError.bad("push \(name): name the repository, and the tag in ?tag=") }
        let wanted: [String]
        if tag.isEmpty {
            wanted = try await engine.imageSummaries().flatMap(\.RepoTags).filter {
                (try? RegistryReference.parse($0))?.name == repo.name
            }.sorted()
            guard !wanted.isEmpty else { throw EngineError(.notFound, "An image does not exist locally with the tag: \(repo.familiarName)") }
        } else {
            wanted = [try Self.tagName(repo: name, tag: tag)]
        }
        let credentials = RegistryCredentials.fromHeader(ex.request.header("X-Registry-Auth"))
        let stream = ProgressStream(ex)
        let pusher = ImagePusher(client: registry)
        do {
            for local in wanted {
                let ref = try RegistryReference.parse(local)
                let (packed, scratch) = try await engine.packImageForPush(local)
                defer { engine.discardPacked(scratch) }
                try await pusher.push(packed, as: ref, credentials: credentials) { line in try await stream.send(line) }
                engine.events.emit("image", "push", id: local, attributes: ["name": local])
            }
        } catch {
            guard stream.started else { throw error }
            try? await stream.send(.failure("\(HTTPStatus.failure(error))"))
        }
        if stream.started { try? await ex.finish() }
    }

    /// `docker login` (`POST /auth`): 200 "Login Succeeded" once the registry accepted the
    /// credentials, 401 with the registry's status when it refused them.
    func login(_ ex: HTTPExchange) async throws {
        let bytes = try await ex.collectBody(limit: 1 << 16)
        let credentials = try RegistryCredentials.fromBody(bytes)
        try await registry.login(credentials)
        struct Reply: Encodable { var IdentityToken: String; var Status: String }
        try await json(ex, 200, Reply(IdentityToken: "", Status: "Login Succeeded"))
    }

    /// `docker tag` (`POST /images/{name}/tag?repo=…&tag=…`): 201, no body.
    func tagImage(_ ex: HTTPExchange, _ source: String) async throws {
        let q = ex.request.query
        guard let repo = q["repo"], !repo.isEmpty else { throw EngineError.bad("repo: the new name is required") }
        try await engine.tagImage(source, as: try Self.tagName(repo: repo, tag: q["tag"]))
        try await ex.respond(status: 201)
    }

    /// `repo` and `tag` query values (tag, commit) as one "name:tag", checked as dockerd does.
    static func tagName(repo: String, tag: String?) throws -> String {
        var target = try RegistryReference.parse(repo)
        guard target.digest == nil else { throw EngineError.bad("refusing to create a tag with a digest reference") }
        if let t = tag, !t.isEmpty {
            target = try RegistryReference.fromPullQuery(image: target.familiarName, tag: t)
            guard target.digest == nil else { throw EngineError.bad("tag \"\(t)\": a tag cannot be a digest") }
        }
        return target.familiarName + ":" + (target.tag ?? "latest")
    }
}

/// The progress stream of one pull: the 200 and its headers go out with the first line.
final class ProgressStream: Sendable {
    let ex: HTTPExchange
    private let state = NIOLockedValueBox(false)

    init(_ ex: HTTPExchange) { self.ex = ex }

    var started: Bool { state.withLockedValue { $0 } }

    func send(_ line: ProgressLine) async throws {
        let first = state.withLockedValue { s in defer { s = true }; return !s }
        if first { try await ex.startStream(status: 200, headers: [("Content-Type", "application/json")]) }
        try await ex.write(line.encoded())
    }
}
