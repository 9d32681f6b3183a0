import FoundationEssentials
import NIOSSL

/// Short, readable text for NIOSSL's errors ("certificate verify failed", "no certificate
/// returned", "unsupported protocol"), from BoringSSL's reason strings.
enum TLSErrorText {
    static func describe(_ error: Error) -> String {
        if let e = error as? NIOSSLError {
            switch e {
            case .handshakeFailed(let inner): return describe(boringSSL: inner)
            case .uncleanShutdown: return "the peer closed the connection during the handshake"
            default: return "\(e)"
            }
        }
        if let e = error as? NIOSSLExtraError, e == .failedToValidateHostname {
            return "the server's certificate is not valid for the name or address dialled (see its subjectAltName)"
        }
        return "\(error)"
    }

    static func describe(boringSSL: BoringSSLError) -> String {
        guard case .sslError(let stack) = boringSSL else { return "\(boringSSL)" }
        // Each entry reads like "error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED".
        let reasons = stack.map { entry -> String in
            var text = "\(entry)"
            if let at = text.range(of: " at ", options: .backwards) { text = String(text[..<at.lowerBound]) }
            let reason = text.split(separator: ":").last.map(String.init) ?? text
            return reason.lowercased().split(separator: "_").joined(separator: " ")
        }
        return reasons.isEmpty ? "\(boringSSL)" : reasons.joined(separator: "; ")
    }
}
