import CryoTLS
import Foundation
import SwiftASN1
import X509
import CryoTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The CA and `issue`: what the certificates say, and how their files are written.
@Suite struct CertificateAuthorityTests {
    @Test func caIsSelfSignedCAWithCertSignUsage() throws {
        let ca = try CertificateAuthority.create(commonName: "unit CA", days: 3650)
        let c = ca.certificate
        #expect(c.subject == c.issuer)
        guard case .isCertificateAuthority = try c.extensions.basicConstraints else { Issue.record("not a CA"); return }
        let ku = try #require(try c.extensions.keyUsage)
        #expect(ku.keyCertSign)
        #expect(ku.cRLSign)
        let years = c.notValidAfter.timeIntervalSince(c.notValidBefore) / (365 * 86_400)
        #expect(abs(years - 10) <= 0.1)
    }

    @Test func issuedCertificateHasSANsBothUsagesAndLifetime() throws {
        let ca = try CertificateAuthority.create()
        let issued = try ca.issue(names: ["node1", "node1.example"], ips: ["127.0.0.1", "::1"], days: 365)
        let c = issued.certificate
        let summary = CertificateSummary(c)
        #expect(summary.dnsNames == ["node1", "node1.example"])
        #expect(summary.ipAddresses == ["127.0.0.1", "::1"])
        #expect(!summary.isCA)
        #expect(c.issuer == ca.certificate.subject)
        let eku = try #require(try c.extensions.extendedKeyUsage)
        #expect(eku.contains(.serverAuth))
        #expect(eku.contains(.clientAuth))
        let days = c.notValidAfter.timeIntervalSince(c.notValidBefore) / 86_400
        #expect(abs(days - 365) <= 0.01)
        #expect(c.notValidBefore < Date())
        // Signed by the CA's key.
        #expect(ca.certificate.publicKey.isValidSignature(c.signature, for: c))
    }

    @Test func serialsAreFreshAndPositive() throws {
        let ca = try CertificateAuthority.create()
        let a = try ca.issue(names: ["a"], ips: []).certificate.serialNumber
        let b = try ca.issue(names: ["a"], ips: []).certificate.serialNumber
        #expect(a != b)
        #expect(a.bytes.count == 20)
        #expect(a.bytes[0] < 0x80)
    }

    @Test func issueRefusesBadNamesAndAddresses() throws {
        let ca = try CertificateAuthority.create()
        #expect(throws: (any Error).self) { try ca.issue(names: [], ips: []) }
        #expect(throws: (any Error).self) { try ca.issue(names: ["bad name"], ips: []) }
        #expect(throws: (any Error).self) { try ca.issue(names: [], ips: ["300.1.1.1"]) }
        #expect(throws: (any Error).self) { try ca.issue(names: ["ok"], ips: [], days: 0) }
    }

    @Test func filesModesAndNoOverwriteWithoutForce() throws {
        let dir = try TempDir("cryo-tls-test").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ca = try CertificateAuthority.create()
        let (cert, key) = try ca.write(to: dir + "/ca/sub", force: false)
        #expect(fileMode(dir + "/ca/sub") == 0o700)
        #expect(fileMode(key) == 0o600)
        #expect(fileMode(cert) == 0o644)
        // A second CA over the first one: refused, the key unchanged.
        let before = try String(contentsOfFile: key, encoding: .utf8)
        if let e = #expect(throws: (any Error).self, performing: { try CertificateAuthority.create().write(to: dir + "/ca/sub", force: false) }) {
            #expect("\(e)".contains("--force"), "\(e)")
        }
        #expect(try String(contentsOfFile: key, encoding: .utf8) == before)
        _ = try CertificateAuthority.create().write(to: dir + "/ca/sub", force: true)
        #expect(try String(contentsOfFile: key, encoding: .utf8) != before)

        let loaded = try CertificateAuthority.load(from: dir + "/ca/sub")
        let paths = try loaded.write(try loaded.issue(names: ["n"], ips: []), to: dir + "/id", force: false)
        #expect(fileMode(paths.keyPath) == 0o600)
        #expect(fileMode(paths.certPath) == 0o644)
        #expect(fileMode(paths.caPath) == 0o644)
        #expect(fileMode(dir + "/id") == 0o700)
        #expect(throws: (any Error).self) { try loaded.write(try loaded.issue(names: ["n"], ips: []), to: dir + "/id", force: false) }
    }

    /// A symlink planted where key.pem goes is replaced, not written through.
    @Test func writingDoesNotFollowSymlinks() throws {
        let dir = try TempDir("cryo-tls-test").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ca = try CertificateAuthority.create()
        _ = try ca.write(to: dir + "/ca", force: false)
        mkdir(dir + "/id", 0o700)
        let victim = dir + "/victim"
        try "precious\n".write(toFile: victim, atomically: false, encoding: .utf8)
        #expect(symlink(victim, dir + "/id/cert.pem") == 0)
        #expect(symlink(victim, dir + "/ca/ca.pem.link") == 0)
        _ = try ca.write(try ca.issue(names: ["n"], ips: []), to: dir + "/id", force: false)
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
        var st = stat()
        #expect(lstat(dir + "/id/cert.pem", &st) == 0)
        #expect((st.st_mode & S_IFMT) == S_IFREG)
    }

    @Test func loadRefusesAKeyOfAnotherCA() throws {
        let dir = try TempDir("cryo-tls-test").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try CertificateAuthority.create().write(to: dir + "/a", force: false)
        _ = try CertificateAuthority.create().write(to: dir + "/b", force: false)
        #expect(rename(dir + "/b/ca-key.pem", dir + "/a/ca-key.pem") == 0)
        if let e = #expect(throws: (any Error).self, performing: { try CertificateAuthority.load(from: dir + "/a") }) {
            #expect("\(e)".contains("does not match"), "\(e)")
        }
    }

    @Test func identityErrorsNameTheFile() throws {
        let dir = try TempDir("cryo-tls-test").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pki = try TestPKI(dir: dir)
        _ = try pki.identity("id")
        if let e = #expect(throws: (any Error).self, performing: { try TLSIdentity(caPath: dir + "/nope.pem", certPath: dir + "/id/cert.pem", keyPath: dir + "/id/key.pem") }) {
            #expect("\(e)".contains("\(dir)/nope.pem does not exist"), "\(e)")
        }
        try "garbage".write(toFile: dir + "/bad.pem", atomically: false, encoding: .utf8)
        if let e = #expect(throws: (any Error).self, performing: { try TLSIdentity(caPath: dir + "/id/ca.pem", certPath: dir + "/bad.pem", keyPath: dir + "/id/key.pem") }) {
            #expect("\(e)".contains("\(dir)/bad.pem"), "\(e)")
        }
        if let e = #expect(throws: (any Error).self, performing: { try TLSIdentity(caPath: dir + "/id/ca.pem", certPath: dir + "/id/cert.pem", keyPath: dir + "/bad.pem") }) {
            #expect("\(e)".contains("private key"), "\(e)")
        }
    }

    /// A key that does not belong to the certificate is caught when the TLS context is made
    /// (cryod does this at start, so it fails there and not at the first client).
    @Test func mismatchedKeyFailsAtContextCreation() throws {
        let dir = try TempDir("cryo-tls-test").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pki = try TestPKI(dir: dir)
        _ = try pki.identity("a")
        _ = try pki.identity("b")
        let mixed = try TLSIdentity(caPath: dir + "/a/ca.pem", certPath: dir + "/a/cert.pem", keyPath: dir + "/b/key.pem")
        if let e = #expect(throws: (any Error).self, performing: { try mixed.makeServerContext() }) {
            #expect("\(e)".contains("does the key match the certificate?"), "\(e)")
        }
    }
}
