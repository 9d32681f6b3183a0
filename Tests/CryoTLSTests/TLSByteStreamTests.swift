import CryoHTTP
import CryoTLS
import Foundation
import Synchronization
import CryoTestSupport
import Testing

/// `TLSByteStream` against `HTTPServer`'s TLS listener on 127.0.0.1: requests, a hijacked
/// stream both ways with half-closes, a large transfer, and the refusals.
@Suite struct TLSByteStreamTests {
    final class Log: Sendable {
        let lines = Mutex<[String]>([])
        func add(_ s: String) { lines.withLock { $0.append(s) } }
        var all: [String] { lines.withLock { $0 } }
    }

    /// GET /ping → "pong"; POST /echo hijacks and echoes until the client half-closes, then
    /// half-closes too; GET /big sends `bigSize` bytes.
    static let bigSize = 8 << 20

    func startServer(_ identity: TLSIdentity, log: Log, limits: ConnectionLimits = ConnectionLimits()) async throws -> (HTTPServer, Int) {
        let setup = try TLSServerSetup(identity: identity, log: { log.add($0) })
        let server = HTTPServer(listeners: [.tcp(host: "127.0.0.1", port: 0, secure: { try setup.secure($0) })], limits: limits) { ex in
            do {
                switch ex.request.path {
                case "/ping":
                    try await ex.respond(status: 200, headers: [("Content-Type", "text/plain")], body: Array("pong".utf8))
                case "/big":
                    try await ex.startStream(status: 200, headers: [("Content-Type", "application/octet-stream")])
                    let chunk = [UInt8](repeating: 0x61, count: 1 << 16)
                    for _ in 0..<(Self.bigSize / chunk.count) { try await ex.write(chunk) }
                    try await ex.finish()
                default:
                    let raw = try await ex.hijack(contentType: "application/vnd.docker.raw-stream")
                    while let bytes = try await raw.read() { try await raw.write(bytes) }
                    await raw.closeWrite()
                }
            } catch {
                log.add("handler error \(error)")
            }
        }
        try await server.start()
        let port = try #require(server.boundPorts.first ?? nil)
        return (server, port)
    }

    func readResponseHead(_ s: TLSByteStream) async throws -> (String, [UInt8]) {
        var got: [UInt8] = []
        while true {
            guard let b = try await s.read() else { throw TLSError("EOF before the response head") }
            got += b
            if let r = got.firstRange(of: Array("\r\n\r\n".utf8)) {
                return (String(decoding: got[..<r.lowerBound], as: UTF8.self), Array(got[r.upperBound...]))
            }
        }
    }

    @Test func requestAndHijackedStreamOverMutualTLS() async throws {
        let dir = try TempDir("cryo-tls-test").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pki = try TestPKI(dir: dir)
        let serverID = try pki.identity("server", names: ["localhost"], ips: ["127.0.0.1"])
        let clientID = try pki.identity("client", names: ["client"], ips: [])
        let log = Log()
        let (server, port) = try await startServer(serverID, log: log)

        // By IP (checked against the IP SAN).
        let s = try await TLSByteStream.connect(host: "127.0.0.1", port: port, identity: clientID)
        try await s.write(Array("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        var (head, body) = try await readResponseHead(s)
        #expect(head.hasPrefix("HTTP/1.1 200"), "\(head)")
        while body.count < 4, let more = try await s.read() { body += more }
        #expect(String(decoding: body, as: UTF8.self) == "pong")

        // Hijack on the same connection; echo; half-close both ways.
        try await s.write(Array("POST /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n".utf8))
        (head, body) = try await readResponseHead(s)
        #expect(head.hasPrefix("HTTP/1.1 101"), "\(head)")
        try await s.write(Array("hello over tls\n".utf8))
        await s.closeWrite()
        while let more = try await s.read() { body += more }
        #expect(String(decoding: body, as: UTF8.self) == "hello over tls\n")
        await s.close()

        // By DNS name (SNI and the DNS SAN).
        let byName = try await TLSByteStream.connect(host: "localhost", port: port, identity: clientID)
        try await byName.write(Array("GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        (head, _) = try await readResponseHead(byName)
        #expect(head.hasPrefix("HTTP/1.1 200"), "\(head)")
        await byName.close()
        try await server.shutdown()
        #expect((log.all.filter { $0.contains("handshake") }) == [])
    }

    /// 8 MiB read slowly: the reader gets every byte; the stream holds at most ~1 MiB ahead.
    @Test func largeResponseWithBackpressure() async throws {
        let dir = try TempDir("cryo-tls-test").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pki = try TestPKI(dir: dir)
        let (server, port) = try await startServer(try pki.identity("server"), log: Log())
        let s = try await TLSByteStream.connect(host: "127.0.0.1", port: port, identity: try pki.identity("client"))
        try await s.write(Array("GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        var (_, first) = try await readResponseHead(s)
        var total = first.count
        first = []
        while let b = try await s.read() {
            total += b.count
            if total < 2 << 20 { try await Task.sleep(for: .milliseconds(1)) }
        }
        // Chunked framing adds a few bytes per chunk.
        #expect(total >= Self.bigSize)
        await s.close()
        try await server.shutdown()
    }

    @Test func clientOfAnotherCAIsRefusedAndLogged() async throws {
        let dir = try TempDir("cryo-tls-test").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pki = try TestPKI(dir: dir + "/a")
        let other = try TestPKI(dir: dir + "/b", name: "other CA")
        let log = Log()
        let (server, port) = try await startServer(try pki.identity("server"), log: log)
        // The stranger trusts the server's CA, but its own certificate is from another CA.
        let strangerPaths = TLSIdentityPaths(caPath: dir + "/a/server/ca.pem", certPath: dir + "/b/c/cert.pem", keyPath: dir + "/b/c/key.pem")
        _ = try other.identity("c")
        let stranger = try TLSIdentity(paths: strangerPaths)
        do {
            let s = try await TLSByteStream.connect(host: "127.0.0.1", port: port, identity: stranger)
            // TLS 1.3: the server's verdict arrives after the client's handshake finished.
            try await s.write(Array("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            let r = try await s.read()
            #expect(r == nil, "the server answered a client of another CA")
        } catch {
            #expect("\(error)".contains("127.0.0.1:\(port)"), "\(error)")
        }
        try await server.shutdown()
        #expect(log.all.contains { $0.contains("TLS handshake from 127.0.0.1:") && $0.contains("unknown CA") }, "\(log.all)")
    }

    @Test func serverOfAnotherCAIsRefusedWithAReason() async throws {
        let dir = try TempDir("cryo-tls-test").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pki = try TestPKI(dir: dir + "/a")
        let other = try TestPKI(dir: dir + "/b", name: "other CA")
        let (server, port) = try await startServer(try other.identity("server"), log: Log())
        do {
            _ = try await TLSByteStream.connect(host: "127.0.0.1", port: port, identity: try pki.identity("client"))
            Issue.record("connected to a server of another CA")
        } catch {
            let text = "\(error)"
            #expect(text.contains("TLS handshake with 127.0.0.1:\(port) failed"), "\(text)")
            #expect(text.contains("certificate verify failed (unknown CA: the certificate of CN=127.0.0.1 is not signed by a trusted CA (its issuer: CN=other CA))"), "\(text)")
        }
        try await server.shutdown()
    }

    @Test func serverCertificateForAnotherAddressIsRefused() async throws {
        let dir = try TempDir("cryo-tls-test").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pki = try TestPKI(dir: dir)
        // Valid, same CA, but for 127.0.0.2 and "elsewhere": dialling 127.0.0.1 must fail.
        let (server, port) = try await startServer(try pki.identity("server", names: ["elsewhere"], ips: ["127.0.0.2"]), log: Log())
        do {
            _ = try await TLSByteStream.connect(host: "127.0.0.1", port: port, identity: try pki.identity("client"))
            Issue.record("accepted a certificate for another address")
        } catch {
            #expect("\(error)".contains("TLS handshake with 127.0.0.1:\(port) failed"), "\(error)")
        }
        try await server.shutdown()
    }

    @Test func expiredClientCertificateIsRefused() async throws {
        let dir = try TempDir("cryo-tls-test").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pki = try TestPKI(dir: dir)
        let log = Log()
        let (server, port) = try await startServer(try pki.identity("server"), log: log)
        let expired = try pki.identity("old", days: 1, notBefore: Date() - 3 * 86_400)
        do {
            let s = try await TLSByteStream.connect(host: "127.0.0.1", port: port, identity: expired)
            try await s.write(Array("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            let r = try await s.read()
            #expect(r == nil, "the server answered a client with an expired certificate")
        } catch {
            #expect("\(error)".contains("127.0.0.1:\(port)"), "\(error)")
        }
        try await server.shutdown()
        #expect(log.all.contains { $0.contains("TLS handshake from") && $0.contains("expired on") }, "\(log.all)")
    }

    @Test func nothingListeningSaysSo() async throws {
        let dir = try TempDir("cryo-tls-test").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pki = try TestPKI(dir: dir)
        // Bind and close to find a port nobody listens on.
        let (server, port) = try await startServer(try pki.identity("server"), log: Log())
        try await server.shutdown()
        do {
            _ = try await TLSByteStream.connect(host: "127.0.0.1", port: port, identity: try pki.identity("client"))
            Issue.record("connected to nothing")
        } catch {
            #expect("\(error)".contains("cannot connect to 127.0.0.1:\(port)"), "\(error)")
        }
    }

    /// The connection limit counts TLS connections: at the limit, the idle one is closed to
    /// make room for the new one, which is served.
    @Test func connectionLimitEvictsAnIdleTLSConnection() async throws {
        let dir = try TempDir("cryo-tls-test").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pki = try TestPKI(dir: dir)
        let client = try pki.identity("client")
        let (server, port) = try await startServer(try pki.identity("server"), log: Log(),
                                                   limits: ConnectionLimits(maxConnections: 1))
        let idle = try await TLSByteStream.connect(host: "127.0.0.1", port: port, identity: client)
        let fresh = try await TLSByteStream.connect(host: "127.0.0.1", port: port, identity: client)
        try await fresh.write(Array("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let (head, _) = try await readResponseHead(fresh)
        #expect(head.hasPrefix("HTTP/1.1 200"), "\(head)")
        let r = try? await idle.read()
        #expect((r ?? nil) == nil, "the idle connection was not closed")
        await idle.close()
        await fresh.close()
        try await server.shutdown()
    }
}
