/// Errors of the client library. `daemon` carries the API's `{"message": ...}`.
public enum ClientError: Error, Sendable, CustomStringConvertible {
    /// The daemon could not be reached at all.
    case cannotConnect(host: String, reason: String)
    /// The daemon answered with status >= 400.
    case daemon(status: Int, message: String)
    /// The bytes on the wire were not the HTTP we expect.
    case protocolError(String)
    /// A read or write failed, or the daemon closed the connection early.
    case io(String)
    /// A local problem (file not found, bad flag value).
    case usage(String)

    public var description: String {
        switch self {
        case .cannotConnect(let host, let reason):
            return "Cannot connect to the cryo daemon at \(host). Is cryod running? (\(reason))"
        case .daemon(_, let message): return "Error response from daemon: \(message)"
        case .protocolError(let m): return "protocol error: \(m)"
        case .io(let m): return m
        case .usage(let m): return m
        }
    }

    /// 404 from the daemon.
    public var isNotFound: Bool {
        if case .daemon(404, _) = self { return true }
        return false
    }
}
