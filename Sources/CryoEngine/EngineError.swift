import CryoLinux

/// The engine's failures are `CryoFailure`s; this name stays for the engine's many
/// throw sites. The API turns a failure's code into an HTTP status (CryoAPI's
/// `HTTPStatus.of`), nothing here knows of HTTP.
public typealias EngineError = CryoFailure

extension CryoFailure {
    public static func noSuchContainer(_ ref: String) -> CryoFailure { CryoFailure(.notFound, "No such container: \(ref)") }
    public static func noSuchImage(_ ref: String) -> CryoFailure { CryoFailure(.notFound, "No such image: \(ref)") }
    public static func noSuchExec(_ ref: String) -> CryoFailure { CryoFailure(.notFound, "No such exec instance: \(ref)") }
    public static func bad(_ message: String) -> CryoFailure { CryoFailure(.invalidArgument, message) }
    public static func conflict(_ message: String) -> CryoFailure { CryoFailure(.conflict, message) }
    public static func internalError(_ message: String) -> CryoFailure { CryoFailure(.internal, message) }
}
