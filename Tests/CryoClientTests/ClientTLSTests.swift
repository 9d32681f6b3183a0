@testable import CryoClient
import CryoTLS
import Foundation
import XCTest

/// How the CLI picks its TLS material for a tcp:// daemon (the docker CLI's flags and
/// environment), and that tcp:// without it is refused.
final class ClientTLSTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "cryo-clienttls-" + UUID().uuidString
        let ca = try CertificateAuthority.create()
        _ = try ca.write(try ca.issue(names: ["c"], ips: []), to: dir + "/certs", force: false)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testHostResolutionFallsBackToDockerHost() {
        XCTAssertEqual(DaemonClient.resolveHost(flag: nil, environment: ["DOCKER_HOST": "tcp://127.0.0.1:2376"]), "tcp://127.0.0.1:2376")
        XCTAssertEqual(DaemonClient.resolveHost(flag: nil, environment: ["CRYO_HOST": "unix:///a", "DOCKER_HOST": "tcp://x:1"]), "unix:///a")
    }

    func testTCPWithoutTLSIsRefused() throws {
        XCTAssertNil(try ClientTLS.identity(host: "tcp://127.0.0.1:2376", environment: ["HOME": dir]))
        XCTAssertThrowsError(try DaemonClient(host: "tcp://127.0.0.1:2376", tls: nil)) { e in
            XCTAssertTrue("\(e)".contains("without TLS"), "\(e)")
        }
    }

    func testCertPathAndVerifyFromEnvironment() throws {
        let env = ["DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": dir + "/certs"]
        let id = try XCTUnwrap(try ClientTLS.identity(host: "tcp://127.0.0.1:2376", environment: env))
        XCTAssertEqual(id.paths, TLSIdentityPaths(directory: dir + "/certs"))
        let c = try DaemonClient(host: "tcp://127.0.0.1:2376", tls: id)
        XCTAssertEqual(c.socketPath, "")
        // A unix host ignores TLS settings.
        XCTAssertNil(try ClientTLS.identity(host: "unix:///x.sock", environment: env))
    }

    func testFlagsWinOverTheCertDirectory() throws {
        let env = ["CRYO_TLSVERIFY": "1", "DOCKER_CERT_PATH": dir + "/nowhere",
                   "CRYO_TLSCACERT": dir + "/certs/ca.pem", "CRYO_TLSCERT": dir + "/certs/cert.pem", "CRYO_TLSKEY": dir + "/certs/key.pem"]
        let id = try XCTUnwrap(try ClientTLS.identity(host: "tcp://h:1", environment: env))
        XCTAssertEqual(id.paths.keyPath, dir + "/certs/key.pem")
        // Missing files are named.
        XCTAssertThrowsError(try ClientTLS.identity(host: "tcp://h:1", environment: ["DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": dir + "/nowhere"])) { e in
            XCTAssertTrue("\(e)".contains(dir + "/nowhere/ca.pem"), "\(e)")
        }
    }

    func testTCPAddressParsing() throws {
        XCTAssertEqual(try DaemonClient.parseTCP("tcp://127.0.0.1:2376").0, "127.0.0.1")
        XCTAssertEqual(try DaemonClient.parseTCP("tcp://[::1]:9").1, 9)
        XCTAssertEqual(try DaemonClient.parseTCP("tcp://node1").1, 2376)
        XCTAssertThrowsError(try DaemonClient.parseTCP("tcp://h:99999"))
        XCTAssertThrowsError(try DaemonClient.parseTCP("tcp://:1"))
    }
}
