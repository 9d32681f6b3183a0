import CryoEngine
import CryoHTTP
import CryoImages
import CryoLinux
import CryoRuntime
import CryoTLS

/// The one place a failure becomes an HTTP status: by its code, never by its text.
/// Docker's statuses (moby's errdefs): a bad request 400, not found 404, conflict 409,
/// already done 304, not implemented 501, unavailable 503, everything else 500; and
/// 413 for too large a body, 403 for a peer that refused this daemon's certificate (or
/// whose certificate this daemon does not trust).
enum HTTPStatus {
    static func of(_ code: CryoFailure.Code) -> Int {
        switch code {
        case .invalidArgument, .invalidArchive: return 400
        case .tooLarge: return 413
        case .untrusted: return 403
        case .notFound: return 404
        case .conflict: return 409
        case .notModified: return 304
        case .unsupported: return 501
        case .unavailable: return 503
        // A command that cannot be run answers a failed start; cryod has answered 500
        // there from the start (Docker: 400), and the exit code (126/127) is what
        // clients look at.
        case .commandNotRunnable: return 500
        default: return 500
        }
    }

    /// Any error a handler throws as the failure to answer with: a coded error by its code,
    /// decoding errors are the request's (400, naming the field), anything else is cryod's.
    static func failure(_ error: any Error) -> CryoFailure {
        switch error {
        case let f as CryoFailure: return f
        case let c as any CodedError: return CryoFailure(c.code, "\(c)")
        case let d as DecodingError: return CryoFailure(.invalidArgument, describe(d))
        default: return CryoFailure(.internal, "\(error)")
        }
    }
}
