/// Why a checkpoint's images could not be read: which file, what was wrong.
public struct InspectError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
