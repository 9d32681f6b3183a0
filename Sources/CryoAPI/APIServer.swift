import CryoEngine
import CryoHTTP
import CryoLinux
import CryoRegistry
import CryoTLS
import FoundationEssentials

/// The Docker Engine API subset (plus cryo's extensions) on top of the engine.
/// Routes accept both `/vX.Y/...` and unprefixed paths, as the docker CLI and
/// docker-py use both (docker-api-subset.md §1).
public struct APIServer: Sendable {
    public static let apiVersion = "1.50"
    public static let minAPIVersion = "1.24"
    public static let engineVersion = "0.1.0"
    /// Sent on every response: the CLI gates `checkpoint` on these (§3).
    public static let defaultHeaders: [(String, String)] = [
        ("Api-Version", apiVersion), ("Docker-Experimental", "true"), ("Ostype", "linux"),
        ("Server", "cryod/\(engineVersion) (linux)"),
    ]

    let engine: Engine
    /// cryod's own TLS identity (`--tlsverify --tlscacert --tlscert --tlskey`), nil without
    /// TLS: its server certificate, and its client certificate when it dials another cryod
    /// (`TLSByteStream.connect(host:port:identity:)`).
    public let tlsIdentity: TLSIdentity?

    /// Registries for pull and login (one connection pool for the daemon's life).
    let registry: RegistryClient

    public init(engine: Engine, tlsIdentity: TLSIdentity? = nil, registry: RegistryClient = .init(settings: .init())) {
        self.engine = engine
        self.tlsIdentity = tlsIdentity
        self.registry = registry
    }

    public func handle(_ ex: HTTPExchange) async {
        let req = ex.request
        let (path, version) = Self.stripVersion(req.path)
        if let v = version, Self.compare(v, Self.minAPIVersion) < 0 {
            await send(ex, EngineError.bad("client version \(v) is too old. Minimum supported API version is \(Self.minAPIVersion), please upgrade your client to a newer version"))
            return
        }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        do {
            try await route(ex, req.method, parts)
        } catch {
            await send(ex, HTTPStatus.failure(error))
        }
    }

    func route(_ ex: HTTPExchange, _ method: String, _ p: [String]) async throws {
        switch (method, p.count, p.first) {
        case ("GET", 1, "_ping"), ("HEAD", 1, "_ping"): try await ping(ex)
        case ("GET", 1, "version"): try await version(ex)
        case ("GET", 1, "info"): try await info(ex)
        case ("GET", 1, "events"): try await events(ex)
        case ("POST", 1, "auth"): try await login(ex)
        case ("GET", 2, "system") where p[1] == "df": try await systemDF(ex)
        case ("POST", 2, "build") where p[1] == "prune": try await pruneBuildCache(ex)
        case ("POST", 1, "commit"): try await commitContainer(ex)
        case (_, _, "containers"): try await containerRoute(ex, method, Array(p.dropFirst()))
        case (_, _, "exec"): try await execRoute(ex, method, Array(p.dropFirst()))
        case (_, _, "images"): try await imageRoute(ex, method, Array(p.dropFirst()))
        case (_, _, "networks"): try await networkRoute(ex, method, Array(p.dropFirst()))
        case (_, _, "volumes"): try await volumeRoute(ex, method, Array(p.dropFirst()))
        case (_, _, "cryo"): try await cryoRoute(ex, method, Array(p.dropFirst()))
        default: throw EngineError(.notFound, "page not found")
        }
    }

    func containerRoute(_ ex: HTTPExchange, _ method: String, _ p: [String]) async throws {
        switch (method, p.count) {
        case ("GET", 1) where p[0] == "json": try await listContainers(ex)
        case ("POST", 1) where p[0] == "create": try await createContainer(ex)
        case ("POST", 1) where p[0] == "restore": try await importCheckpoint(ex)
        case ("POST", 1) where p[0] == "prune": try await pruneContainers(ex)
        case ("DELETE", 1): try await removeContainer(ex, p[0])
        case ("GET", 2) where p[1] == "json": try await inspectContainer(ex, p[0])
        case ("POST", 2):
            switch p[1] {
            case "start": try await startContainer(ex, p[0])
            case "stop": try await stopContainer(ex, p[0])
            case "restart": try await restartContainer(ex, p[0])
            case "kill": try await killContainer(ex, p[0])
            case "pause": try await engine.pause(p[0]); try await noContent(ex)
            case "unpause": try await engine.unpause(p[0]); try await noContent(ex)
            case "wait": try await waitContainer(ex, p[0])
            case "attach": try await attachContainer(ex, p[0])
            case "resize": try await resizeContainer(ex, p[0])
            case "exec": try await createExec(ex, p[0])
            case "checkpoints": try await createCheckpoint(ex, p[0])
            case "migrate": try await migrateContainer(ex, p[0])
            case "fork": try await forkContainer(ex, p[0])
            case "rename": try await renameContainer(ex, p[0])
            case "update": try await updateContainer(ex, p[0])
            default: throw EngineError(.notFound, "page not found")
            }
        case ("HEAD", 2) where p[1] == "archive": try await statArchivePath(ex, p[0])
        case ("GET", 2) where p[1] == "archive": try await getArchive(ex, p[0])
        case ("PUT", 2) where p[1] == "archive": try await putArchive(ex, p[0])
        case ("GET", 2) where p[1] == "logs": try await logs(ex, p[0])
        case ("GET", 2) where p[1] == "top": try await topContainer(ex, p[0])
        case ("GET", 2) where p[1] == "export": try await exportContainer(ex, p[0])
        case ("GET", 2) where p[1] == "changes": try await containerChanges(ex, p[0])
        case ("GET", 2) where p[1] == "stats": try await containerStats(ex, p[0])
        case ("GET", 2) where p[1] == "checkpoints": try await listCheckpoints(ex, p[0])
        case ("DELETE", 3) where p[1] == "checkpoints": try await removeCheckpoint(ex, p[0], p[2])
        case ("GET", 4) where p[1] == "checkpoints" && p[3] == "export": try await exportCheckpoint(ex, p[0], p[2])
        case ("GET", 4) where p[1] == "checkpoints" && p[3] == "inspect": try await inspectCheckpoint(ex, p[0], p[2])
        case ("GET", 3) where p[1] == "checkpoint" && p[2] == "check": try await json(ex, 200, try await engine.checkCheckpoint(p[0]))
        case ("POST", 4) where p[1] == "checkpoints" && p[3] == "clone": try await cloneCheckpoint(ex, p[0], p[2])
        case ("POST", 4) where p[1] == "checkpoints" && p[3] == "push": try await pushCheckpoint(ex, p[0], p[2])
        default: throw EngineError(.notFound, "page not found")
        }
    }

    func execRoute(_ ex: HTTPExchange, _ method: String, _ p: [String]) async throws {
        switch (method, p.count) {
        case ("POST", 2) where p[1] == "start": try await startExec(ex, p[0])
        case ("POST", 2) where p[1] == "resize": try await resizeExec(ex, p[0])
        case ("GET", 2) where p[1] == "json": try await inspectExec(ex, p[0])
        default: throw EngineError(.notFound, "page not found")
        }
    }

    func imageRoute(_ ex: HTTPExchange, _ method: String, _ p: [String]) async throws {
        switch (method, p.count) {
        case ("GET", 1) where p[0] == "json": try await listImages(ex)
        case ("POST", 1) where p[0] == "load": try await loadImages(ex)
        case ("POST", 1) where p[0] == "create": try await createImage(ex)
        case ("POST", 1) where p[0] == "prune": try await pruneImages(ex)
        case ("GET", 1) where p[0] == "get": try await saveImages(ex, ex.request.queryValues("names"))
        case ("GET", _) where p.count >= 2 && p.last == "get": try await saveImages(ex, [p.dropLast().joined(separator: "/")])
        case ("GET", _) where p.count >= 2 && p.last == "history": try await imageHistory(ex, p.dropLast().joined(separator: "/"))
        case ("POST", _) where p.count >= 2 && p.last == "tag": try await tagImage(ex, p.dropLast().joined(separator: "/"))
        case ("POST", _) where p.count >= 2 && p.last == "push": try await pushImage(ex, p.dropLast().joined(separator: "/"))
        case ("GET", _) where p.count >= 2 && p.last == "json": try await inspectImage(ex, p.dropLast().joined(separator: "/"))
        case ("DELETE", _) where p.count >= 1: try await removeImage(ex, p.joined(separator: "/"))
        default: throw EngineError(.notFound, "page not found")
        }
    }

    // MARK: helpers

    /// "/v1.50/containers/json" → ("/containers/json", "1.50").
    static func stripVersion(_ path: String) -> (String, String?) {
        guard path.hasPrefix("/v") else { return (path, nil) }
        let rest = path.dropFirst(2)
        guard let slash = rest.firstIndex(of: "/") else { return (path, nil) }
        let v = rest[..<slash]
        let nums = v.split(separator: ".")
        guard nums.count == 2, nums.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) else { return (path, nil) }
        return (String(rest[slash...]), String(v))
    }

    static func compare(_ a: String, _ b: String) -> Int {
        let x = a.split(separator: ".").map { Int($0) ?? 0 }, y = b.split(separator: ".").map { Int($0) ?? 0 }
        for i in 0..<max(x.count, y.count) {
            let l = i < x.count ? x[i] : 0, r = i < y.count ? y[i] : 0
            if l != r { return l < r ? -1 : 1 }
        }
        return 0
    }

    func json<T: Encodable>(_ ex: HTTPExchange, _ status: Int, _ value: T) async throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.withoutEscapingSlashes]
        let body = try enc.encode(value)
        try await ex.respond(status: status, headers: [("Content-Type", "application/json")], body: Array(body) + [0x0a])
    }

    func noContent(_ ex: HTTPExchange) async throws {
        try await ex.respond(status: 204)
    }

    func send(_ ex: HTTPExchange, _ e: CryoFailure) async {
        struct Message: Encodable { var message: String }
        if e.code == .clientGone { return }
        let status = HTTPStatus.of(e.code)
        if status == 304 {
            try? await ex.respond(status: 304)
            return
        }
        try? await json(ex, status, Message(message: e.description))
    }

    /// The JSON body, or a 400 that names the field that did not decode.
    func body<T: Decodable>(_ ex: HTTPExchange, _ type: T.Type, limit: Int = 1 << 20, emptyOK: Bool = false) async throws -> T? {
        let bytes = try await ex.collectBody(limit: limit)
        if bytes.isEmpty || bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) {
            if emptyOK { return nil }
            throw EngineError.bad("request body is empty: a JSON object is required")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch let e as DecodingError {
            throw EngineError.bad(describe(e))
        }
    }
}

/// Moby's boolean query values: "", 0, no, false, none mean false.
func flag(_ q: [String: String], _ key: String, default d: Bool = false) -> Bool {
    guard let v = q[key] else { return d }
    return !["", "0", "no", "false", "none"].contains(v.lowercased())
}

func describe(_ e: DecodingError) -> String {
    func path(_ c: [CodingKey]) -> String {
        let s = c.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        return s.isEmpty ? "body" : s
    }
    switch e {
    case .typeMismatch(let t, let c): return "invalid JSON: \(path(c.codingPath)): expected \(t)"
    case .valueNotFound(let t, let c): return "invalid JSON: \(path(c.codingPath)): expected \(t), found null"
    case .keyNotFound(let k, let c): return "invalid JSON: \(path(c.codingPath + [k])): missing"
    case .dataCorrupted(let c): return "invalid JSON: \(path(c.codingPath)): \(c.debugDescription)"
    @unknown default: return "invalid JSON"
    }
}
