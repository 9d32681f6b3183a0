import NIOCore
import NIOSSL

/// One party's TLS material, loaded: the CA it trusts (and nothing else), its certificate
/// chain and its private key. A cryod uses one identity as its server identity and as its
/// client identity when it dials a peer.
public struct TLSIdentity: Sendable {
    public let paths: TLSIdentityPaths
    public let trustedCAs: [NIOSSLCertificate]
    public let certificateChain: [NIOSSLCertificate]
    public let privateKey: NIOSSLPrivateKey

    /// Loads and parses the three PEM files. Errors name the file and what is wrong with it
    /// (missing, unreadable, not PEM, no certificate in it).
    public init(caPath: String, certPath: String, keyPath: String) throws {
        self.paths = TLSIdentityPaths(caPath: caPath, certPath: certPath, keyPath: keyPath)
        self.trustedCAs = try Self.loadCertificates(caPath, what: "CA certificate (--tlscacert)")
        self.certificateChain = try Self.loadCertificates(certPath, what: "certificate (--tlscert)")
        let keyBytes = try PEMFiles.read(keyPath, what: "private key (--tlskey)")
        do {
            self.privateKey = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw TLSError("private key (--tlskey) \(keyPath) is not a PEM private key: \(error)")
        }
    }

    public init(paths: TLSIdentityPaths) throws {
        try self.init(caPath: paths.caPath, certPath: paths.certPath, keyPath: paths.keyPath)
    }

    static func loadCertificates(_ path: String, what: String) throws -> [NIOSSLCertificate] {
        let bytes = try PEMFiles.read(path, what: what)
        let certs: [NIOSSLCertificate]
        do {
            certs = try NIOSSLCertificate.fromPEMBytes(bytes)
        } catch {
            throw TLSError("\(what) \(path) is not a PEM certificate: \(error)")
        }
        guard !certs.isEmpty else { throw TLSError("\(what) \(path) holds no PEM certificate") }
        return certs
    }

    /// TLS 1.2 suites allowed: ECDHE key exchange with an AEAD cipher only (TLS 1.3's are all AEAD).
    public static let tls12CipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// The daemon's side: TLS 1.2 or later, a client certificate required and verified
    /// against this identity's CA only (not the system store).
    public func serverConfiguration() -> TLSConfiguration {
        var c = TLSConfiguration.makeServerConfiguration(
            certificateChain: certificateChain.map { .certificate($0) },
            privateKey: .privateKey(privateKey)
        )
        c.minimumTLSVersion = .tlsv12
        c.cipherSuites = Self.tls12CipherSuites
        // A client certificate is required (peerCertificateRequired); a client's address
        // is not checked against its certificate's names.
        c.certificateVerification = .noHostnameVerification
        c.trustRoots = .certificates(trustedCAs)
        c.sendCANameList = true
        c.shutdownTimeout = Self.shutdownTimeout
        return c
    }

    /// The dialling side: presents this identity's certificate, verifies the server's chain
    /// against the CA and its SAN against the name or IP dialled.
    public func clientConfiguration() -> TLSConfiguration {
        var c = TLSConfiguration.makeClientConfiguration()
        c.minimumTLSVersion = .tlsv12
        c.cipherSuites = Self.tls12CipherSuites
        c.certificateVerification = .fullVerification
        c.trustRoots = .certificates(trustedCAs)
        c.certificateChain = certificateChain.map { .certificate($0) }
        c.privateKey = .privateKey(privateKey)
        c.shutdownTimeout = Self.shutdownTimeout
        return c
    }

    /// How long a closing connection waits for the peer's close_notify (NIOSSL's default is
    /// 5 s; a half-closed hijacked stream whose peer already sent it would wait that long).
    static let shutdownTimeout = TimeAmount.seconds(1)

    /// A context for the server side (build once, share across connections).
    public func makeServerContext() throws -> NIOSSLContext {
        do {
            return try NIOSSLContext(configuration: serverConfiguration())
        } catch {
            throw TLSError("TLS server setup with \(paths.certPath) and \(paths.keyPath) failed (does the key match the certificate?): \(error)")
        }
    }

    public func makeClientContext() throws -> NIOSSLContext {
        do {
            return try NIOSSLContext(configuration: clientConfiguration())
        } catch {
            throw TLSError("TLS client setup with \(paths.certPath) and \(paths.keyPath) failed (does the key match the certificate?): \(error)")
        }
    }
}
