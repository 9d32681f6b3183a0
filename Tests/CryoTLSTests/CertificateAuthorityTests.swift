import CryoTLS
import Foundation
import SwiftASN1
import X509
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The CA and `issue`: what the certificates say, and how their files are written.
final class CertificateAuthorityTests: XCTestCase {
    func testCAIsSelfSignedCAWithCertSignUsage() throws {
        let ca = try CertificateAuthority.create(commonName: "unit CA", days: 3650)
        let c = ca.certificate
        XCTAssertEqual(c.subject, c.issuer)
        guard case .isCertificateAuthority = try c.extensions.basicConstraints else { return XCTFail("not a CA") }
        let ku = try XCTUnwrap(try c.extensions.keyUsage)
        XCTAssertTrue(ku.keyCertSign)
        XCTAssertTrue(ku.cRLSign)
        let years = c.notValidAfter.timeIntervalSince(c.notValidBefore) / (365 * 86_400)
        XCTAssertEqual(years, 10, accuracy: 0.1)
    }

    func testIssuedCertificateHasSANsBothUsagesAndLifetime() throws {
        let ca = try CertificateAuthority.create()
        let issued = try ca.issue(names: ["node1", "node1.example"], ips: ["127.0.0.1", "::1"], days: 365)
        let c = issued.certificate
        let summary = CertificateSummary(c)
        XCTAssertEqual(summary.dnsNames, ["node1", "node1.example"])
        XCTAssertEqual(summary.ipAddresses, ["127.0.0.1", "::1"])
        XCTAssertFalse(summary.isCA)
        XCTAssertEqual(c.issuer, ca.certificate.subject)
        let eku = try XCTUnwrap(try c.extensions.extendedKeyUsage)
        XCTAssertTrue(eku.contains(.serverAuth))
        XCTAssertTrue(eku.contains(.clientAuth))
        let days = c.notValidAfter.timeIntervalSince(c.notValidBefore) / 86_400
        XCTAssertEqual(days, 365, accuracy: 0.01)
        XCTAssertLessThan(c.notValidBefore, Date())
        // Signed by the CA's key.
        XCTAssertTrue(ca.certificate.publicKey.isValidSignature(c.signature, for: c))
    }

    func testSerialsAreFreshAndPositive() throws {
        let ca = try CertificateAuthority.create()
        let a = try ca.issue(names: ["a"], ips: []).certificate.serialNumber
        let b = try ca.issue(names: ["a"], ips: []).certificate.serialNumber
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(a.bytes.count, 20)
        XCTAssertLessThan(a.bytes[0], 0x80)
    }

    func testIssueRefusesBadNamesAndAddresses() throws {
        let ca = try CertificateAuthority.create()
        XCTAssertThrowsError(try ca.issue(names: [], ips: []))
        XCTAssertThrowsError(try ca.issue(names: ["bad name"], ips: []))
        XCTAssertThrowsError(try ca.issue(names: [], ips: ["300.1.1.1"]))
        XCTAssertThrowsError(try ca.issue(names: ["ok"], ips: [], days: 0))
    }

    func testFilesModesAndNoOverwriteWithoutForce() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        let ca = try CertificateAuthority.create()
        let (cert, key) = try ca.write(to: dir + "/ca/sub", force: false)
        XCTAssertEqual(fileMode(dir + "/ca/sub"), 0o700)
        XCTAssertEqual(fileMode(key), 0o600)
        XCTAssertEqual(fileMode(cert), 0o644)
        // A second CA over the first one: refused, the key unchanged.
        let before = try String(contentsOfFile: key, encoding: .utf8)
        XCTAssertThrowsError(try CertificateAuthority.create().write(to: dir + "/ca/sub", force: false)) { e in
            XCTAssertTrue("\(e)".contains("--force"), "\(e)")
        }
        XCTAssertEqual(try String(contentsOfFile: key, encoding: .utf8), before)
        _ = try CertificateAuthority.create().write(to: dir + "/ca/sub", force: true)
        XCTAssertNotEqual(try String(contentsOfFile: key, encoding: .utf8), before)

        let loaded = try CertificateAuthority.load(from: dir + "/ca/sub")
        let paths = try loaded.write(try loaded.issue(names: ["n"], ips: []), to: dir + "/id", force: false)
        XCTAssertEqual(fileMode(paths.keyPath), 0o600)
        XCTAssertEqual(fileMode(paths.certPath), 0o644)
        XCTAssertEqual(fileMode(paths.caPath), 0o644)
        XCTAssertEqual(fileMode(dir + "/id"), 0o700)
        XCTAssertThrowsError(try loaded.write(try loaded.issue(names: ["n"], ips: []), to: dir + "/id", force: false))
    }

    /// A symlink planted where key.pem goes is replaced, not written through.
    func testWritingDoesNotFollowSymlinks() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        let ca = try CertificateAuthority.create()
        _ = try ca.write(to: dir + "/ca", force: false)
        mkdir(dir + "/id", 0o700)
        let victim = dir + "/victim"
        try "precious\n".write(toFile: victim, atomically: false, encoding: .utf8)
        XCTAssertEqual(symlink(victim, dir + "/id/cert.pem"), 0)
        XCTAssertEqual(symlink(victim, dir + "/ca/ca.pem.link"), 0)
        _ = try ca.write(try ca.issue(names: ["n"], ips: []), to: dir + "/id", force: false)
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious\n")
        var st = stat()
        XCTAssertEqual(lstat(dir + "/id/cert.pem", &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFREG)
    }

    func testLoadRefusesAKeyOfAnotherCA() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        _ = try CertificateAuthority.create().write(to: dir + "/a", force: false)
        _ = try CertificateAuthority.create().write(to: dir + "/b", force: false)
        XCTAssertEqual(rename(dir + "/b/ca-key.pem", dir + "/a/ca-key.pem"), 0)
        XCTAssertThrowsError(try CertificateAuthority.load(from: dir + "/a")) { e in
            XCTAssertTrue("\(e)".contains("does not match"), "\(e)")
        }
    }

    func testIdentityErrorsNameTheFile() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        let pki = try TestPKI(dir: dir)
        _ = try pki.identity("id")
        XCTAssertThrowsError(try TLSIdentity(caPath: dir + "/nope.pem", certPath: dir + "/id/cert.pem", keyPath: dir + "/id/key.pem")) { e in
            XCTAssertTrue("\(e)".contains("\(dir)/nope.pem does not exist"), "\(e)")
        }
        try "garbage".write(toFile: dir + "/bad.pem", atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try TLSIdentity(caPath: dir + "/id/ca.pem", certPath: dir + "/bad.pem", keyPath: dir + "/id/key.pem")) { e in
            XCTAssertTrue("\(e)".contains("\(dir)/bad.pem"), "\(e)")
        }
        XCTAssertThrowsError(try TLSIdentity(caPath: dir + "/id/ca.pem", certPath: dir + "/id/cert.pem", keyPath: dir + "/bad.pem")) { e in
            XCTAssertTrue("\(e)".contains("private key"), "\(e)")
        }
    }

    /// A key that does not belong to the certificate is caught when the TLS context is made
    /// (cryod does this at start, so it fails there and not at the first client).
    func testMismatchedKeyFailsAtContextCreation() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        let pki = try TestPKI(dir: dir)
        _ = try pki.identity("a")
        _ = try pki.identity("b")
        let mixed = try TLSIdentity(caPath: dir + "/a/ca.pem", certPath: dir + "/a/cert.pem", keyPath: dir + "/b/key.pem")
        XCTAssertThrowsError(try mixed.makeServerContext()) { e in
            XCTAssertTrue("\(e)".contains("does the key match the certificate?"), "\(e)")
        }
    }
}
