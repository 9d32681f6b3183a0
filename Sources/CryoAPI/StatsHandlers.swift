import CryoEngine
import CryoHTTP
import CryoLinux
import FoundationEssentials

/// `GET /containers/{id}/stats`: one JSON object per second while `stream` (the default) is
/// on; with `stream=0` a single object whose precpu_stats is a sample one second older (as
/// dockerd primes it, so the client's CPU % is real), with `one-shot=1` a single sample at
/// once (precpu_stats empty).
extension APIServer {
    static let statsInterval: UInt64 = 1_000_000_000

    func containerStats(_ ex: HTTPExchange, _ ref: String) async throws {
        let q = ex.request.query
        let stream = flag(q, "stream", default: true)
        let oneShot = flag(q, "one-shot")
        if oneShot && stream { throw EngineError.bad("cannot have stream=true and one-shot=true") }
        var sample = try await engine.statsSample(ref)
        if oneShot {
            try await json(ex, 200, sample)
            return
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.withoutEscapingSlashes]
        if !stream {
            try await Task.sleep(nanoseconds: Self.statsInterval)
            var next = try await engine.statsSample(ref)
            next.precpu_stats = sample.cpu_stats
            next.preread = sample.read
            try await json(ex, 200, next)
            return
        }
        try await ex.startStream(status: 200, headers: [("Content-Type", "application/json")])
        try await ex.write(Array(try enc.encode(sample)) + [0x0a])
        // Until the client goes away or the container does.
        while !ex.isClientClosed {
            try? await Task.sleep(nanoseconds: Self.statsInterval)
            if ex.isClientClosed { break }
            guard var next = try? await engine.statsSample(ref) else { break }
            next.precpu_stats = sample.cpu_stats
            next.preread = sample.read
            sample = next
            do { try await ex.write(Array(try enc.encode(next)) + [0x0a]) } catch { break }
        }
        try? await ex.finish()
    }
}
