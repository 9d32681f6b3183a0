/// An engine failure with the HTTP status the Docker API gives it.
public struct EngineError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Int, Sendable {
        case badRequest = 400, notFound = 404, conflict = 409, notModified = 304, internalError = 500
    }
    public let kind: Kind
    public let message: String
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { message }
    public var status: Int { kind.rawValue }

    public static func noSuchContainer(_ ref: String) -> EngineError { EngineError(.notFound, "No such container: \(ref)") }
    public static func noSuchImage(_ ref: String) -> EngineError { EngineError(.notFound, "No such image: \(ref)") }
    public static func noSuchExec(_ ref: String) -> EngineError { EngineError(.notFound, "No such exec instance: \(ref)") }
    public static func bad(_ message: String) -> EngineError { EngineError(.badRequest, message) }
    public static func conflict(_ message: String) -> EngineError { EngineError(.conflict, message) }
    public static func internalError(_ message: String) -> EngineError { EngineError(.internalError, message) }
}
