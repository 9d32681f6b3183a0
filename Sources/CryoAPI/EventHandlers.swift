import CryoEngine
import CryoHTTP
import CryoLinux
import FoundationEssentials

/// `GET /events?since=&until=&filters=`: one JSON object per line (chunked) as dockerd: past
/// events in the window, then live ones until `until` or the client goes away (its
/// subscription is then freed by the stream's termination).
extension APIServer {
    func events(_ ex: HTTPExchange) async throws {
        let q = ex.request.query
        let now = Double(EventBus.nowNano()) / 1e9
        let filter = try EventFilter.parse(q["filters"])
        let since = try EventTime.parse(q["since"], now: now, name: "since")
        let until = try EventTime.parse(q["until"], now: now, name: "until")
        let bus = engine.events
        try await ex.startStream(status: 200, headers: [("Content-Type", "application/json")])
        let stream = bus.subscribe(filter: filter, since: since, until: until)
        // until in the future: a timer ends the subscription when it passes
        let timer: Task<Void, Never>? = until.map { u in
            Task {
                let wait = u - EventBus.nowNano()
                if wait > 0 { try? await Task.sleep(nanoseconds: UInt64(wait)) }
                bus.expire()
            }
        }
        defer { timer?.cancel() }
        for await e in stream {
            if ex.isClientClosed { break }
            do { try await ex.write(Array(e.jsonLine().utf8)) } catch { break }
        }
        try? await ex.finish()
    }
}
