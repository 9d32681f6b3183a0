import CryoLinux

extension CryoFailure.Code {
    /// A request body over the endpoint's limit (413).
    public static let tooLarge = CryoFailure.Code("too-large")
    /// The client went away: there is no one to answer.
    public static let clientGone = CryoFailure.Code("client-gone")
}

/// A broken request is the client's (400), too large a body a 413 (CryoAPI's `HTTPStatus`).
extension HTTPError: CodedError {
    public var code: CryoFailure.Code {
        switch self {
        case .bodyTooLarge: return .tooLarge
        case .malformedBody: return .invalidArgument
        case .connectionClosed: return .clientGone
        case .invalidState: return .internal
        }
    }
}

/// A bad `-H` value or a listener that cannot be set up (cryod refuses to start).
extension ListenError: CodedError {
    public var code: CryoFailure.Code { .invalidArgument }
}
