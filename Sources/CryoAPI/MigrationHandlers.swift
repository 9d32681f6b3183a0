import CryoEngine
import CryoHTTP
import CryoMigration
import FoundationEssentials

/// cryo's extensions for migration:
///
/// - `POST /containers/{id}/migrate?target=tcp://HOST:PORT[&post-copy=1][&tcp-established=1][&timeout=S]`
///   moves the container to the cryod at `target`; the answer streams JSON lines (one
///   `MigrationEvent` per phase), the last with `report` or `error`. `timeout`: seconds the
///   target may stay silent while the container is frozen (default 30).
/// - `POST /cryo/migrate` (Upgrade): the receiving side, spoken by another cryod.
/// - `POST /cryo/migrate/{session}/pages` (Upgrade): that migration's CRIU page stream.
/// - `POST /cryo/migrate/{session}/outcome` (Upgrade): whether that session was committed here.
extension APIServer {
    func migrateContainer(_ ex: HTTPExchange, _ ref: String) async throws {
        let q = ex.request.query
        guard let target = q["target"], !target.isEmpty else {
            throw EngineError.bad("target: the cryod to migrate to is required (tcp://HOST:PORT)")
        }
        var req = MigrationRequest(target: target)
        req.postCopy = flag(q, "post-copy")
        req.tcpEstablished = flag(q, "tcp-established")
        if let t = q["timeout"] {
            guard let secs = Double(t), secs.isFinite, secs >= 1, secs <= 3600 else {
                throw EngineError.bad("timeout: \"\(t)\" is not a number of seconds from 1 to 3600 (how long the target may stay silent while the container is frozen)")
            }
            req.silenceLimit = secs
        }
        _ = try await engine.resolve(ref)   // a missing container is a plain 404, before the stream
        try await ex.startStream(status: 200, headers: [("Content-Type", "application/json")])
        let encoder = JSONEncoder()
        @Sendable func line(_ e: MigrationEvent) async {
            guard let data = try? encoder.encode(e) else { return }
            try? await ex.write(Array(data) + [10])
        }
        do {
            let report = try await engine.migrate(ref, req) { await line($0) }
            await line(MigrationEvent(phase: "done", status: "migrated", report: report))
        } catch {
            let text = "\(error)"
            await line(MigrationEvent(phase: "done", status: "failed", error: text))
        }
        try await ex.finish()
    }

    func cryoRoute(_ ex: HTTPExchange, _ method: String, _ p: [String]) async throws {
        switch (method, p.count) {
        case ("POST", 1) where p[0] == "migrate":
            let raw = try await ex.hijack(contentType: "application/vnd.cryo.migrate")
            await engine.receiveMigration(raw)
        case ("POST", 3) where p[0] == "migrate" && p[2] == "pages":
            let raw = try await ex.hijack(contentType: "application/vnd.cryo.pages")
            if engine.migrationStreams.deliver(p[1], raw) {
                await raw.closed()
            } else {
                await raw.close()
            }
        case ("POST", 3) where p[0] == "migrate" && p[2] == "outcome":
            let committed = await engine.migrationCommitted(p[1])
            let raw = try await ex.hijack(contentType: "application/vnd.cryo.migrate")
            let ch = FrameChannel(raw)
            try? await ch.send(committed ? .committed : .abort(reason: "session \(p[1]) was not committed here"))
            await raw.closeWrite()
            await raw.closed()
        default: throw EngineError(.notFound, "page not found")
        }
    }
}
