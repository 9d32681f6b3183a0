#if canImport(Glibc)
import Glibc
#endif
import Crypto
import FoundationEssentials
import SwiftASN1
import X509

/// A small certificate authority for one cluster of cryods and their clients: a P-256 key
/// and a self-signed CA certificate, kept as `ca.pem` and `ca-key.pem` in one directory.
/// Each daemon gets one leaf certificate that is both its server certificate and its
/// client certificate (serverAuth + clientAuth), as cryod A dials cryod B with it.
public struct CertificateAuthority: Sendable {
    public static let certificateFile = "ca.pem"
    public static let keyFile = "ca-key.pem"

    public let certificate: Certificate
    /// The key, as PEM (Crypto's key type is not Sendable).
    let keyPEM: String
    var key: P256.Signing.PrivateKey {
        get throws { try P256.Signing.PrivateKey(pemRepresentation: keyPEM) }
    }

    init(certificate: Certificate, key: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.keyPEM = key.pemRepresentation
    }

    /// A new CA valid from an hour ago (clock skew) for `days` days.
    public static func create(commonName: String = "cryo CA", days: Int = 3650, now: Date = Date()) throws -> CertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName(commonName) }
        let publicKey = Certificate.PublicKey(key.publicKey)
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: publicKey)
        }
        let cert = try Certificate(
            version: .v3,
            serialNumber: randomSerial(),
            publicKey: publicKey,
            notValidBefore: now - 3600,
            notValidAfter: now + Double(days) * 86_400,
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        return CertificateAuthority(certificate: cert, key: key)
    }

    /// Writes ca.pem (0644) and ca-key.pem (0600) into `directory` (made 0700 if missing).
    /// An existing CA key is replaced only with `force`.
    public func write(to directory: String, force: Bool) throws -> (certificate: String, key: String) {
        try PEMFiles.makeDirectory(directory)
        let certPath = directory + "/" + Self.certificateFile
        let keyPath = directory + "/" + Self.keyFile
        if !force && PEMFiles.exists(keyPath) {
            throw TLSError("\(keyPath) already exists: refusing to replace a CA key (every certificate it signed would stop being trusted); use --force to replace it")
        }
        try PEMFiles.write(Array(keyPEM.utf8) + [10], to: keyPath, mode: 0o600, overwrite: true)
        try PEMFiles.write(Array(try certificate.serializeAsPEM().pemString.utf8) + [10], to: certPath, mode: 0o644, overwrite: true)
        return (certPath, keyPath)
    }

    /// Loads ca.pem and ca-key.pem from `directory`; checks that they belong together.
    public static func load(from directory: String) throws -> CertificateAuthority {
        let certPath = directory + "/" + certificateFile
        let keyPath = directory + "/" + keyFile
        let certText = String(decoding: try PEMFiles.read(certPath, what: "CA certificate"), as: UTF8.self)
        let keyText = String(decoding: try PEMFiles.read(keyPath, what: "CA key"), as: UTF8.self)
        let cert: Certificate
        do { cert = try Certificate(pemEncoded: certText) } catch {
            throw TLSError("CA certificate \(certPath) is not a PEM certificate: \(error)")
        }
        let key: P256.Signing.PrivateKey
        do { key = try P256.Signing.PrivateKey(pemRepresentation: keyText) } catch {
            throw TLSError("CA key \(keyPath) is not a PEM P-256 private key: \(error)")
        }
        guard cert.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw TLSError("CA key \(keyPath) does not match the certificate \(certPath)")
        }
        return CertificateAuthority(certificate: cert, key: key)
    }

    /// What `issue` makes: the leaf certificate and its key.
    public struct Issued: Sendable {
        public let certificate: Certificate
        public let keyPEM: String
    }

    /// A leaf certificate for a daemon (or a client): subject CN = first name (or first IP),
    /// SANs = DNS `names` and `ips`, extendedKeyUsage serverAuth and clientAuth, valid for
    /// `days` days from `notBefore` (default: an hour ago, for clock skew).
    public func issue(names: [String], ips: [String], days: Int = 365, notBefore: Date? = nil) throws -> Issued {
        guard !names.isEmpty || !ips.isEmpty else { throw TLSError("a certificate needs at least one --name or --ip") }
        guard days >= 1 else { throw TLSError("--days must be at least 1, got \(days)") }
        var sans: [GeneralName] = []
        for n in names {
            guard Self.isValidDNSName(n) else { throw TLSError("--name \"\(n)\" is not a DNS name (letters, digits, '-', '.', an optional leading '*.')") }
            sans.append(.dnsName(n))
        }
        for ip in ips {
            guard let bytes = Self.ipAddressBytes(ip) else { throw TLSError("--ip \"\(ip)\" is not an IPv4 or IPv6 address") }
            sans.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
        }
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        let subject = try DistinguishedName { CommonName(names.first ?? ips[0]) }
        let caKeyID = try certificate.extensions.subjectKeyIdentifier?.keyIdentifier
            ?? SubjectKeyIdentifier(hash: certificate.publicKey).keyIdentifier
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            SubjectKeyIdentifier(hash: publicKey)
            AuthorityKeyIdentifier(keyIdentifier: caKeyID)
            SubjectAlternativeNames(sans)
        }
        let start = notBefore ?? Date() - 3600
        let cert = try Certificate(
            version: .v3,
            serialNumber: Self.randomSerial(),
            publicKey: publicKey,
            notValidBefore: start,
            notValidAfter: start + Double(days) * 86_400,
            issuer: certificate.subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(try self.key)
        )
        return Issued(certificate: cert, keyPEM: key.pemRepresentation)
    }

    /// Writes the three files DOCKER_CERT_PATH holds: ca.pem (0644), cert.pem (0644),
    /// key.pem (0600), into `directory` (made 0700 if missing). An existing key.pem is
    /// replaced only with `force`.
    public func write(_ issued: Issued, to directory: String, force: Bool) throws -> TLSIdentityPaths {
        try PEMFiles.makeDirectory(directory)
        let paths = TLSIdentityPaths(directory: directory)
        if !force && PEMFiles.exists(paths.keyPath) {
            throw TLSError("\(paths.keyPath) already exists; use --force to replace it")
        }
        try PEMFiles.write(Array(issued.keyPEM.utf8) + [10], to: paths.keyPath, mode: 0o600, overwrite: true)
        try PEMFiles.write(Array(try issued.certificate.serializeAsPEM().pemString.utf8) + [10], to: paths.certPath, mode: 0o644, overwrite: true)
        try PEMFiles.write(Array(try certificate.serializeAsPEM().pemString.utf8) + [10], to: paths.caPath, mode: 0o644, overwrite: true)
        return paths
    }

    /// 20 random bytes with the top bit clear (a positive INTEGER of at most 20 octets, RFC 5280).
    static func randomSerial() -> Certificate.SerialNumber {
        var bytes = [UInt8](repeating: 0, count: 20)
        var rng = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &rng) }
        bytes[0] &= 0x7f
        if bytes[0] == 0 { bytes[0] = 1 }
        return Certificate.SerialNumber(bytes: bytes)
    }

    static func isValidDNSName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        var labels = name.split(separator: ".", omittingEmptySubsequences: false)
        if labels.first == "*" && labels.count > 1 { labels.removeFirst() }
        return labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        }
    }

    /// 4 bytes for IPv4 text, 16 for IPv6; nil for anything else.
    static func ipAddressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}

/// Where an identity's three files are: DOCKER_CERT_PATH's ca.pem, cert.pem, key.pem.
public struct TLSIdentityPaths: Sendable, Equatable, Codable {
    public var caPath: String
    public var certPath: String
    public var keyPath: String

    public init(caPath: String, certPath: String, keyPath: String) {
        self.caPath = caPath
        self.certPath = certPath
        self.keyPath = keyPath
    }

    public init(directory: String) {
        self.init(caPath: directory + "/ca.pem", certPath: directory + "/cert.pem", keyPath: directory + "/key.pem")
    }
}
