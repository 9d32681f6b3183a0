import CryoHTTP
import Foundation
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Idle connections time out, the number of connections is capped (the longest-idle one
/// makes room), busy and hijacked connections are left alone, and a broken body is a 400.
@Suite struct ConnectionLimitTests {
    func start(_ limits: ConnectionLimits, _ handler: @escaping @Sendable (HTTPExchange) async -> Void) async throws -> (HTTPServer, String) {
        let path = tempSocketPath()
        let server = HTTPServer(socketPath: path, defaultHeaders: [], limits: limits, handler: handler)
        try await server.start()
        return (server, path)
    }

    @Test func idleAndHalfSentHeadsAreClosedAfterTheTimeout() async throws {
        let (server, path) = try await start(ConnectionLimits(idleTimeout: .milliseconds(200))) { ex in
            try? await ex.respond(status: 200, body: bytes("ok"))
        }
        let (silent, partial, afterRequest) = try await onThread { () -> ([UInt8], [UInt8], String) in
            let a = try BlockingClient(path: path)                      // never sends anything
            let b = try BlockingClient(path: path)
            try b.send("GET /_ping HTTP/1.1\r\nHost: x\r\n")             // a head that never ends
            let c = try BlockingClient(path: path)
            try c.send("GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            let r = try c.readResponse()
            // Each read ends in EOF (the server closed), not in the client's 10 s timeout.
            return (try a.readToEOF(), try b.readToEOF(), r.head + String(decoding: r.body, as: UTF8.self) + "|" + String(decoding: try c.readToEOF(), as: UTF8.self))
        }
        #expect(silent == [])
        #expect(partial == [])
        #expect(afterRequest == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok|")
        try await server.shutdown()
    }

    @Test func aBusyHandlerAndAHijackedStreamOutliveTheTimeout() async throws {
        let (server, path) = try await start(ConnectionLimits(idleTimeout: .milliseconds(100))) { ex in
            if ex.request.path == "/slow" {
                try? await Task.sleep(for: .milliseconds(600))   // six idle timeouts
                try? await ex.respond(status: 200, body: bytes("slow"))
                return
            }
            guard let raw = try? await ex.hijack(contentType: "application/vnd.docker.raw-stream") else { return }
            try? await Task.sleep(for: .milliseconds(600))
            try? await raw.write(bytes("still here"))
            await raw.close()
        }
        let (slow, hijacked) = try await onThread { () -> (String, String) in
            let a = try BlockingClient(path: path)
            try a.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            let r = try a.readResponse()
            let b = try BlockingClient(path: path)
            try b.send("POST /attach HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n")
            _ = try b.readThrough("\r\n\r\n")
            return (String(decoding: r.body, as: UTF8.self), String(decoding: try b.readToEOF(), as: UTF8.self))
        }
        #expect(slow == "slow")
        #expect(hijacked == "still here")
        try await server.shutdown()
    }

    @Test func atTheLimitTheLongestIdleConnectionMakesRoom() async throws {
        let gate = Gate()
        let blocked = Recorder()
        let (server, path) = try await start(ConnectionLimits(idleTimeout: .seconds(600), maxConnections: 3)) { ex in
            if ex.request.path == "/block" {
                blocked.add(ex.request.path)
                await gate.wait()
            }
            try? await ex.respond(status: 200, body: bytes(ex.request.path))
        }
        let results = try await onThread { () -> [String] in
            var out: [String] = []
            let idle = try BlockingClient(path: path)
            let busy1 = try BlockingClient(path: path)
            let busy2 = try BlockingClient(path: path)
            try busy1.send("GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
            try busy2.send("GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
            blocked.waitOnThread(count: 2)   // the server is handling both requests
            // A fourth connection: the idle one is closed to make room, the new one is served.
            let fresh = try BlockingClient(path: path)
            try fresh.send("GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            out.append(String(decoding: try fresh.readResponse().body, as: UTF8.self))
            out.append("idle got \(try idle.readToEOF().count) bytes then EOF")
            // Full again (busy1, busy2, fresh idle): fresh makes room for the next one.
            let next = try BlockingClient(path: path)
            try next.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
            out.append(String(decoding: try next.readResponse().body, as: UTF8.self))
            // Every connection busy: a new one is closed at once, unanswered.
            try next.send("GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
            blocked.waitOnThread(count: 3)
            let refused = try BlockingClient(path: path)
            try? refused.send("GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            out.append("refused got \((try? refused.readToEOF())?.count ?? 0) bytes")
            gate.open()
            out.append(String(decoding: try busy1.readResponse().body, as: UTF8.self))
            return out
        }
        #expect(results == ["/_ping", "idle got 0 bytes then EOF", "/next", "refused got 0 bytes", "/block"])
        try await server.shutdown()
    }

    @Test func aBadChunkSizeIsAnswered400() async throws {
        let (server, path) = try await start(ConnectionLimits()) { ex in
            do {
                _ = try await ex.collectBody(limit: 1 << 20)
                try await ex.respond(status: 200)
            } catch {
                try? await ex.respond(status: 500, body: bytes("\(error)"))
            }
        }
        let (head, rest) = try await onThread { () -> (String, [UInt8]) in
            let c = try BlockingClient(path: path)
            try c.send("POST /load HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
            let r = try c.readResponse()
            return (r.head + String(decoding: r.body, as: UTF8.self), try c.readToEOF())
        }
        #expect(head.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(head)")
        #expect(head.contains("Connection: close"), "\(head)")
        #expect(head.contains("malformed request body"), "\(head)")
        #expect(rest == [], "then the connection closes")
        try await server.shutdown()
    }

    /// Answered before its (large) body was read: the client can still send it all and read
    /// the answer (the server shuts its output and drains the input before closing).
    @Test func anEarlyAnswerToALargeUploadReachesTheClient() async throws {
        let (server, path) = try await start(ConnectionLimits()) { ex in
            try? await ex.respond(status: 413, body: bytes("too large"))
        }
        let answer = try await onThread { () -> String in
            let c = try BlockingClient(path: path)
            let size = 16 << 20
            try c.send("POST /load HTTP/1.1\r\nHost: x\r\nContent-Length: \(size)\r\n\r\n")
            try c.send([UInt8](repeating: 0, count: size))
            let r = try c.readResponse()
            return r.head + String(decoding: r.body, as: UTF8.self)
        }
        #expect(answer.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"), "\(answer)")
        #expect(answer.hasSuffix("too large"), "\(answer)")
        try await server.shutdown()
    }
}
