import FoundationEssentials
import NIOCore
import NIOSSL
import X509

/// Why a peer's certificate failed verification, worked out again from the certificate
/// itself: BoringSSL only reports "certificate verify failed", and an operator needs to
/// know whether it is another CA's, expired, or not yet valid.
enum PeerCertificateDiagnosis {
    /// "unknown CA: issued by CN=x", "expired on 2026-01-01T00:00:00Z", ...; nil when none
    /// of these explains it.
    static func explain(_ peer: NIOSSLCertificate?, trusted: [NIOSSLCertificate], now: Date = Date()) -> String? {
        guard let peer, let cert = try? Certificate(derEncoded: peer.toDERBytes()) else { return nil }
        let cas = trusted.compactMap { try? Certificate(derEncoded: $0.toDERBytes()) }
        let signedByTrusted = cas.contains { ca in
            ca.subject == cert.issuer && ca.publicKey.isValidSignature(cert.signature, for: cert)
        }
        if !signedByTrusted { return "unknown CA: the certificate of \(cert.subject) is not signed by a trusted CA (its issuer: \(cert.issuer))" }
        if cert.notValidAfter < now { return "the certificate of \(cert.subject) expired on \(cert.notValidAfter.formatted(.iso8601))" }
        if cert.notValidBefore > now { return "the certificate of \(cert.subject) is not valid before \(cert.notValidBefore.formatted(.iso8601))" }
        return nil
    }

    /// The reason text, with the explanation added when the reason is a failed verification.
    static func describe(_ error: Error, channel: Channel, trusted: [NIOSSLCertificate]) -> String {
        let text = TLSErrorText.describe(error)
        guard TLSAlert.of(error) == .certificateVerifyFailed,
              let handler = try? channel.pipeline.syncOperations.handler(type: NIOSSLHandler.self),
              let why = explain(handler.peerCertificate, trusted: trusted)
        else { return text }
        return "\(text) (\(why))"
    }
}
