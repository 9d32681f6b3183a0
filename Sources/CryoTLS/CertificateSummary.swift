#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import SwiftASN1
import X509

/// What a certificate says, for `cryo tls ... --format json` and messages.
public struct CertificateSummary: Codable, Sendable, Equatable {
    public var subject: String
    public var issuer: String
    public var dnsNames: [String]
    public var ipAddresses: [String]
    public var serial: String
    /// RFC 3339, UTC.
    public var notBefore: String
    public var notAfter: String
    public var isCA: Bool

    public init(_ cert: Certificate) {
        subject = cert.subject.description
        issuer = cert.issuer.description
        let sans = (try? cert.extensions.subjectAlternativeNames) ?? nil
        dnsNames = []
        ipAddresses = []
        for name in sans.map(Array.init) ?? [] {
            switch name {
            case .dnsName(let n): dnsNames.append(n)
            case .ipAddress(let octets): ipAddresses.append(Self.ipText(Array(octets.bytes)))
            default: break
            }
        }
        serial = cert.serialNumber.bytes.map { b in
            let hex = Array("0123456789abcdef".utf8)
            return String(decoding: [hex[Int(b >> 4)], hex[Int(b & 15)]], as: UTF8.self)
        }.joined()
        notBefore = cert.notValidBefore.formatted(.iso8601)
        notAfter = cert.notValidAfter.formatted(.iso8601)
        if case .isCertificateAuthority = (try? cert.extensions.basicConstraints) ?? nil { isCA = true } else { isCA = false }
    }

    static func ipText(_ bytes: [UInt8]) -> String {
        var buf = [CChar](repeating: 0, count: 64)
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard bytes.count == 4 || bytes.count == 16 else { return bytes.map(String.init).joined(separator: ".") }
        let ok = bytes.withUnsafeBytes { src in inet_ntop(family, src.baseAddress, &buf, socklen_t(buf.count)) } != nil
        guard ok else { return "?" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
