import CryoHTTP
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct HTTPServerTests {

    @Test func requestParsing() {
        let r = HTTPRequest(
            method: "GET",
            uri: "/v1.50/containers/a%20b/json?all=1&filters=%7B%22x%22%3A1%7D&name=a+b&all=0",
            headers: [(name: "Connection", value: "keep-alive, Upgrade"), (name: "upgrade", value: "tcp")]
        )
        #expect(r.path == "/v1.50/containers/a b/json")
        #expect(r.query == ["all": "0", "filters": #"{"x":1}"#, "name": "a b"])
        #expect(r.header("UPGRADE") == "tcp")
        #expect(r.wantsUpgrade)
        #expect(!HTTPRequest(method: "GET", uri: "/", headers: [(name: "Connection", value: "Upgrade")]).wantsUpgrade)
    }

    @Test func twoRequestsOnOneKeepAliveConnectionAndSocketMode() async throws {
        let (server, path) = try await startServer { ex in
            let r = ex.request
            let body = "\(r.method) \(r.path) all=\(r.query["all"] ?? "-") name=\(r.query["name"] ?? "-")"
            try? await ex.respond(status: 200, headers: [("Content-Type", "text/plain")], body: bytes(body))
        }
        var st = stat()
        #expect(lstat(path, &st) == 0)
        #expect((st.st_mode & 0o777) == 0o660)
        let (first, second) = try await onThread { () -> (String, String) in
            let c = try BlockingClient(path: path)
            try c.send("GET /v1.50/containers/json?all=1&name=a+b%2Fc HTTP/1.1\r\nHost: api.moby.localhost\r\n\r\n")
            let r1 = try c.readResponse()
            try c.send("DELETE /v1.50/containers/x?force=True HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
            let r2 = try c.readResponse()
            return (r1.head + String(decoding: r1.body, as: UTF8.self), r2.head + String(decoding: r2.body, as: UTF8.self))
        }
        #expect(first == ("HTTP/1.1 200 OK\r\nApi-Version: 1.50\r\nServer: cryod\r\nContent-Type: text/plain\r\nContent-Length: 43\r\n\r\n"
                + "GET /v1.50/containers/json all=1 name=a b/c"))
        #expect(second == ("HTTP/1.1 200 OK\r\nApi-Version: 1.50\r\nServer: cryod\r\nContent-Type: text/plain\r\nContent-Length: 39\r\n\r\n"
                + "DELETE /v1.50/containers/x all=- name=-"))
        try await server.shutdown()
        #expect(lstat(path, &st) != 0, "socket file removed on shutdown")
    }

    @Test func concurrentConnections() async throws {
        let gate = Gate()
        let (server, path) = try await startServer { ex in
            if ex.request.path == "/block" { await gate.wait() }
            if ex.request.path == "/open" { gate.open() }
            try? await ex.respond(status: 200, body: bytes(ex.request.path))
        }
        let result = try await onThread { () -> [String] in
            let a = try BlockingClient(path: path)
            let b = try BlockingClient(path: path)
            try a.send("GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
            try b.send("GET /open HTTP/1.1\r\nHost: x\r\n\r\n")
            let rb = try b.readResponse()
            let ra = try a.readResponse()
            return [String(decoding: rb.body, as: UTF8.self), String(decoding: ra.body, as: UTF8.self)]
        }
        #expect(result == ["/open", "/block"])
        try await server.shutdown()
    }

    @Test func chunkedRequestBodyIsCollectedAndLimitEnforced() async throws {
        let (server, path) = try await startServer(defaultHeaders: []) { ex in
            do {
                let limit = ex.request.path == "/small" ? 8 : 1 << 20
                let body = try await ex.collectBody(limit: limit)
                try await ex.respond(status: 200, body: bytes("got \(body.count): ") + body)
            } catch HTTPError.bodyTooLarge(let n) {
                try? await ex.respond(status: 413, body: bytes("too large \(n)"))
            } catch {
                try? await ex.respond(status: 500, body: bytes("\(error)"))
            }
        }
        let out = try await onThread { () -> [String] in
            let c = try BlockingClient(path: path)
            try c.send("POST /load HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-tar\r\n\r\n")
            try c.send("5\r\nhello\r\n")
            Thread.sleep(forTimeInterval: 0.05)
            try c.send("1\r\n \r\nb\r\nchunked wor\r\n2\r\nld\r\n0\r\n\r\n")
            let r1 = try c.readResponse()
            // Same connection: a body over the limit.
            try c.send("POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n123456\r\n6\r\n789012\r\n0\r\n\r\n")
            let r2 = try c.readResponse()
            return [r1.head + String(decoding: r1.body, as: UTF8.self), r2.head + String(decoding: r2.body, as: UTF8.self)]
        }
        #expect(out[0] == "HTTP/1.1 200 OK\r\nContent-Length: 27\r\n\r\ngot 19: hello chunked world")
        #expect(out[1].hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"), "\(out[1])")
        #expect(out[1].hasSuffix("\r\n\r\ntoo large 8"), "\(out[1])")
        try await server.shutdown()
    }

    @Test func bodyChunksOnMultiMegabyteChunkedUpload() async throws {
        let total = 12 << 20
        let (server, path) = try await startServer(defaultHeaders: []) { ex in
            var count = 0
            var sum: UInt64 = 0
            var chunks = 0
            do {
                for try await chunk in ex.bodyChunks() {
                    chunks += 1
                    count += chunk.count
                    for b in chunk { sum &+= UInt64(b) }
                    if chunks % 16 == 0 { try await Task.sleep(for: .milliseconds(1)) }  // a slow consumer
                }
                try await ex.respond(status: 200, body: bytes("\(count) \(sum)"))
            } catch {
                try? await ex.respond(status: 500, body: bytes("\(error)"))
            }
        }
        let (reply, expectedSum) = try await onThread { () -> (String, UInt64) in
            let c = try BlockingClient(path: path)
            try c.send("POST /v1.50/images/load?quiet=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            var sum: UInt64 = 0
            var sent = 0
            var i = 0
            while sent < total {
                let n = min(65536 + i % 7, total - sent)
                let chunk = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
                for b in chunk { sum &+= UInt64(b) }
                try c.send(Array(String(n, radix: 16).utf8) + bytes("\r\n") + chunk + bytes("\r\n"))
                sent += n
                i += 1
            }
            try c.send("0\r\n\r\n")
            let r = try c.readResponse()
            return (String(decoding: r.body, as: UTF8.self), sum)
        }
        #expect(reply == "\(total) \(expectedSum)")
        try await server.shutdown()
    }

    @Test func streamingHeadArrivesBeforeBodyAndConnectionIsReused() async throws {
        let gate = Gate()
        let (server, path) = try await startServer { ex in
            if ex.request.path == "/next" {
                try? await ex.respond(status: 204)
                return
            }
            do {
                try await ex.startStream(status: 200, headers: [("Content-Type", "application/json")])
                await gate.wait()
                try await ex.write(bytes("hello"))
                try await ex.write([])  // no-op, must not end the chunked body
                try await ex.write(bytes("world!"))
                try await ex.finish()
            } catch {}
        }
        let (head, rest, next) = try await onThread { () -> (String, String, String) in
            let c = try BlockingClient(path: path)
            try c.send("POST /v1.50/containers/x/wait?condition=next-exit HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            let head = try c.readThrough("\r\n\r\n")  // would time out if the head were not flushed
            gate.open()
            let rest = try c.readThrough("0\r\n\r\n")
            try c.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
            let next = try c.readResponse()
            return (head, rest, next.head)
        }
        #expect(head == "HTTP/1.1 200 OK\r\nApi-Version: 1.50\r\nServer: cryod\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(rest == "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n")
        #expect(next == "HTTP/1.1 204 No Content\r\nApi-Version: 1.50\r\nServer: cryod\r\nContent-Length: 0\r\n\r\n")
        try await server.shutdown()
    }

    @Test func handlerWithoutResponseAndUnfinishedStream() async throws {
        let (server, path) = try await startServer(defaultHeaders: []) { ex in
            switch ex.request.path {
            case "/nothing":
                return
            case "/unfinished":
                try? await ex.startStream(status: 200, headers: [])
                try? await ex.write(bytes("x"))
            default:
                try? await ex.respond(
                    status: 404, headers: [("Content-Type", "application/json")],
                    body: bytes(#"{"message":"page not found"}"#))
            }
        }
        let out = try await onThread { () -> String in
            let c = try BlockingClient(path: path)
            try c.send("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
            let a = try c.readResponse()
            try c.send("GET /unfinished HTTP/1.1\r\nHost: x\r\n\r\n")
            let b = try c.readThrough("\r\n\r\n") + c.readThrough("0\r\n\r\n")
            try c.send("GET /v1.50/nope HTTP/1.1\r\nHost: x\r\n\r\n")
            let d = try c.readResponse()
            return a.head + String(decoding: a.body, as: UTF8.self) + "|" + b + "|" + d.head
                + String(decoding: d.body, as: UTF8.self)
        }
        #expect(out == ("HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: 25\r\n\r\n"
                + #"{"message":"no response"}"# + "|"
                + "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n|"
                + "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 28\r\n\r\n"
                + #"{"message":"page not found"}"#))
        try await server.shutdown()
    }

    @Test func headKeepsContentLengthWithoutBody() async throws {
        let (server, path) = try await startServer(defaultHeaders: []) { ex in
            if ex.request.path == "/stream" {
                try? await ex.startStream(status: 200, headers: [])
                try? await ex.write(bytes("ignored"))
                try? await ex.finish()
            } else {
                try? await ex.respond(status: 200, headers: [("Content-Type", "text/plain")], body: bytes("abcdef"))
            }
        }
        let out = try await onThread { () -> [String] in
            let c = try BlockingClient(path: path)
            try c.send("HEAD /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            let h = try c.readResponse(bodyless: true)
            try c.send("HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            let s = try c.readResponse(bodyless: true)
            try c.send("GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            let g = try c.readResponse()
            return [h.head, s.head, g.head + String(decoding: g.body, as: UTF8.self)]
        }
        #expect(out[0] == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\n")
        #expect(out[1] == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        // If the HEAD responses had leaked body bytes, this would not start with the status line.
        #expect(out[2] == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nabcdef")
        try await server.shutdown()
    }

    @Test func connectionCloseIsHonored() async throws {
        let (server, path) = try await startServer(defaultHeaders: []) { ex in
            try? await ex.respond(status: 200, body: bytes("bye"))
        }
        let out = try await onThread { () -> String in
            let c = try BlockingClient(path: path)
            try c.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return String(decoding: try c.readToEOF(), as: UTF8.self)
        }
        #expect(out == "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye")
        try await server.shutdown()
    }

    /// docker-py: exec create, then exec start with Upgrade on the same pooled connection; the upgrade
    /// request has a JSON body and stdin follows in the same write.
    @Test func hijackOnSecondRequestWithBodyAndStdinInSameWrite() async throws {
        let seen = Recorder()
        let (server, path) = try await startServer { ex in
            do {
                let body = try await ex.collectBody(limit: 1 << 20)
                if ex.request.path == "/v1.50/containers/x/exec" {
                    try await ex.respond(status: 201, headers: [("Content-Type", "application/json")], body: bytes(#"{"Id":"e1"}"#))
                    return
                }
                seen.add("body=\(String(decoding: body, as: UTF8.self)) upgrade=\(ex.request.wantsUpgrade)")
                let raw = try await ex.hijack(contentType: "application/vnd.docker.multiplexed-stream")
                // Echo stdin until it holds the whole line.
                var input: [UInt8] = []
                while !input.contains(UInt8(ascii: "\n")), let bytes = try await raw.read() {
                    input += bytes
                }
                seen.add("stdin=\(String(decoding: input, as: UTF8.self).debugDescription)")
                try await raw.write([1, 0, 0, 0, 0, 0, 0, UInt8(input.count)] + input)
                await raw.closeWrite()
                // Drain until the client closes its side.
                var drained = 0
                while let bytes = try await raw.read() { drained += bytes.count }
                seen.add("drained=\(drained)")
                await raw.close()
            } catch {
                seen.add("error \(error)")
            }
        }
        let (first, upgrade, echoed, eof) = try await onThread { () -> (String, String, [UInt8], [UInt8]) in
            let c = try BlockingClient(path: path)
            try c.send("POST /v1.50/containers/x/exec HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"Cmd\":[\"cat\"]}")
            let r1 = try c.readResponse()
            let json = #"{"Detach":false,"Tty":false}"#
            try c.send(
                "POST /v1.50/exec/e1/start HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                    + "Content-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)abc\n")
            let head = try c.readThrough("\r\n\r\n")
            let echoed = try c.readExactly(12)
            let eof = try c.readToEOF()  // server half-closed: EOF while our side is still open
            try c.send("late stdin")  // must be drained, not reset
            c.shutdownWrite()
            return (r1.head + String(decoding: r1.body, as: UTF8.self), head, echoed, eof)
        }
        #expect(first == "HTTP/1.1 201 Created\r\nApi-Version: 1.50\r\nServer: cryod\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"Id\":\"e1\"}")
        #expect(upgrade == ("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                + "Api-Version: 1.50\r\nServer: cryod\r\n\r\n"))
        #expect(echoed == ([1, 0, 0, 0, 0, 0, 0, 4] + bytes("abc\n")))
        #expect(eof == [])
        let log = await seen.wait(count: 3)
        #expect(log == [#"body={"Detach":false,"Tty":false} upgrade=true"#, #"stdin="abc\n""#, "drained=10"])
        try await server.shutdown()
    }

    /// The handler hijacks without reading the body; the body arrives late, with stdin behind it.
    @Test func hijackDiscardsUnreadBody() async throws {
        let seen = Recorder()
        let (server, path) = try await startServer(defaultHeaders: []) { ex in
            do {
                let raw = try await ex.hijack(contentType: "application/vnd.docker.raw-stream", extraHeaders: [("X-Test", "1")])
                var input: [UInt8] = []
                while let bytes = try await raw.read() { input += bytes }
                seen.add(String(decoding: input, as: UTF8.self))
                try await raw.write(bytes("done"))
                await raw.close()
            } catch {
                seen.add("error \(error)")
            }
        }
        let (head, tail) = try await onThread { () -> (String, String) in
            let c = try BlockingClient(path: path)
            try c.send("POST /containers/x/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 10\r\n\r\n01234")
            Thread.sleep(forTimeInterval: 0.05)
            try c.send("56789stdin!")
            let head = try c.readThrough("\r\n\r\n")
            c.shutdownWrite()
            return (head, String(decoding: try c.readToEOF(), as: UTF8.self))
        }
        #expect(head == "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nX-Test: 1\r\n\r\n")
        #expect(tail == "done")
        let log = await seen.wait(count: 1)
        #expect(log == ["stdin!"])
        try await server.shutdown()
    }

    @Test func clientDisconnectDuringStream() async throws {
        let seen = Recorder()
        let (server, path) = try await startServer(defaultHeaders: []) { ex in
            do {
                try await ex.startStream(status: 200, headers: [])
                try await ex.write(bytes("first"))
            } catch {
                seen.add("early error \(error)")
                return
            }
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    await ex.clientClosed()
                    seen.add("clientClosed")
                }
                group.addTask {
                    for _ in 0..<2000 {
                        do {
                            try await ex.write(bytes("tick"))
                        } catch HTTPError.connectionClosed {
                            seen.add("write threw connectionClosed")
                            return
                        } catch {
                            seen.add("write threw \(error)")
                            return
                        }
                        try? await Task.sleep(for: .milliseconds(5))
                    }
                    seen.add("write never failed")
                }
            }
        }
        try await onThread {
            let c = try BlockingClient(path: path)
            try c.send("GET /v1.50/containers/x/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            _ = try c.readThrough("first\r\n")
        }  // the client is gone here (its fd closed on deinit)
        let log = await seen.wait(count: 2)
        #expect(Set(log) == ["clientClosed", "write threw connectionClosed"])
        try await server.shutdown()
    }

    /// clientClosed() must not keep a task group alive once the other work is done.
    @Test func clientClosedReturnsOnCancellation() async throws {
        let (server, path) = try await startServer(defaultHeaders: []) { ex in
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await ex.clientClosed() }
                group.addTask { try? await Task.sleep(for: .milliseconds(20)) }
                await group.next()
                group.cancelAll()
            }
            try? await ex.respond(status: 200, body: bytes("waited"))
        }
        let body = try await onThread { () -> String in
            let c = try BlockingClient(path: path)
            try c.send("POST /containers/x/wait HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            return String(decoding: try c.readResponse().body, as: UTF8.self)
        }
        #expect(body == "waited")
        try await server.shutdown()
    }
}
