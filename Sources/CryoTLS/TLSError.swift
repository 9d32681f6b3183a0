/// What went wrong with TLS material or a TLS connection, said so a person can act on it.
public struct TLSError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
