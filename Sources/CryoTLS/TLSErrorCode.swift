import CryoLinux

extension CryoFailure.Code {
    /// A TLS handshake with a peer failed: one side does not trust the other's certificate
    /// (another CA, expired, issued for another name) or they share no protocol version.
    public static let untrusted = CryoFailure.Code("untrusted")
}

/// Bad TLS files are the caller's to fix, a peer that does not answer (or went away) is
/// unavailable, a refused handshake is a matter of trust.
extension TLSError: CodedError {
    public var code: CryoFailure.Code {
        switch kind {
        case .material: return .invalidArgument
        case .connect, .connection, .closed: return .unavailable
        case .handshake: return .untrusted
        }
    }
}
