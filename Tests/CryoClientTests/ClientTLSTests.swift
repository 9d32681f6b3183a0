@testable import CryoClient
import CryoTLS
import Foundation
import Testing

/// How the CLI picks its TLS material for a tcp:// daemon (the docker CLI's flags and
/// environment), and that tcp:// without it is refused.
@Suite final class ClientTLSTests {
    let dir: String

    init() throws {
        dir = NSTemporaryDirectory() + "cryo-clienttls-" + UUID().uuidString
        let ca = try CertificateAuthority.create()
        _ = try ca.write(try ca.issue(names: ["c"], ips: []), to: dir + "/certs", force: false)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    @Test func hostResolutionFallsBackToDockerHost() {
        #expect(DaemonClient.resolveHost(flag: nil, environment: ["DOCKER_HOST": "tcp://127.0.0.1:2376"]) == "tcp://127.0.0.1:2376")
        #expect(DaemonClient.resolveHost(flag: nil, environment: ["CRYO_HOST": "unix:///a", "DOCKER_HOST": "tcp://x:1"]) == "unix:///a")
    }

    @Test func tcpWithoutTLSIsRefused() throws {
        #expect(try ClientTLS.identity(host: "tcp://127.0.0.1:2376", environment: ["HOME": dir]) == nil)
        if let e = #expect(throws: (any Error).self, performing: { try DaemonClient(host: "tcp://127.0.0.1:2376", tls: nil) }) {
            #expect("\(e)".contains("without TLS"), "\(e)")
        }
    }

    @Test func certPathAndVerifyFromEnvironment() throws {
        let env = ["DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": dir + "/certs"]
        let id = try #require(try ClientTLS.identity(host: "tcp://127.0.0.1:2376", environment: env))
        #expect(id.paths == TLSIdentityPaths(directory: dir + "/certs"))
        let c = try DaemonClient(host: "tcp://127.0.0.1:2376", tls: id)
        #expect(c.socketPath == "")
        // A unix host ignores TLS settings.
        #expect(try ClientTLS.identity(host: "unix:///x.sock", environment: env) == nil)
    }

    @Test func flagsWinOverTheCertDirectory() throws {
        let env = ["CRYO_TLSVERIFY": "1", "DOCKER_CERT_PATH": dir + "/nowhere",
                   "CRYO_TLSCACERT": dir + "/certs/ca.pem", "CRYO_TLSCERT": dir + "/certs/cert.pem", "CRYO_TLSKEY": dir + "/certs/key.pem"]
        let id = try #require(try ClientTLS.identity(host: "tcp://h:1", environment: env))
        #expect(id.paths.keyPath == (dir + "/certs/key.pem"))
        // Missing files are named.
        if let e = #expect(throws: (any Error).self, performing: { try ClientTLS.identity(host: "tcp://h:1", environment: ["DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": dir + "/nowhere"]) }) {
            #expect("\(e)".contains(dir + "/nowhere/ca.pem"), "\(e)")
        }
    }

    @Test func tcpAddressParsing() throws {
        #expect(try DaemonClient.parseTCP("tcp://127.0.0.1:2376").0 == "127.0.0.1")
        #expect(try DaemonClient.parseTCP("tcp://[::1]:9").1 == 9)
        #expect(try DaemonClient.parseTCP("tcp://node1").1 == 2376)
        #expect(throws: (any Error).self) { try DaemonClient.parseTCP("tcp://h:99999") }
        #expect(throws: (any Error).self) { try DaemonClient.parseTCP("tcp://:1") }
    }
}
