import NIOSSL

/// An alert a peer sent to refuse a connection. NIOSSL keeps BoringSSL's packed error codes
/// private and gives only each entry's text ("error:...:SSL routines:...:TLSV1_ALERT_UNKNOWN_CA"),
/// so the alert is read from the reason name there, once, here.
public enum TLSAlert: String, Sendable, CaseIterable {
    case certificateExpired = "ALERT_CERTIFICATE_EXPIRED"
    case unknownCA = "ALERT_UNKNOWN_CA"
    case badCertificate = "ALERT_BAD_CERTIFICATE"
    case certificateRequired = "ALERT_CERTIFICATE_REQUIRED"
    case handshakeFailure = "ALERT_HANDSHAKE_FAILURE"
    /// Not an alert received: this side's own verification of the peer's certificate failed
    /// (BoringSSL's reason CERTIFICATE_VERIFY_FAILED); `PeerCertificateDiagnosis` says why.
    case certificateVerifyFailed = "CERTIFICATE_VERIFY_FAILED"

    /// The alert in a NIOSSL error, during the handshake or after it.
    static func of(_ error: Error) -> TLSAlert? {
        var boring = error as? BoringSSLError
        if case .handshakeFailed(let inner)? = error as? NIOSSLError { boring = inner }
        let stack: NIOBoringSSLErrorStack
        switch boring {
        case .sslError(let s)?, .unknownError(let s)?: stack = s
        default: return nil
        }
        for entry in stack {
            // "error:1000042e:SSL routines:OPENSSL_internal:TLSV1_ALERT_UNKNOWN_CA at FILE:LINE"
            let reason = "\(entry)".split(whereSeparator: { $0 == ":" || $0 == " " }).map(String.init)
            if let a = allCases.first(where: { a in reason.contains { $0.hasSuffix(a.rawValue) } }) { return a }
        }
        return nil
    }
}
