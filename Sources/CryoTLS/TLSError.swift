/// What went wrong with TLS material or a TLS connection, said so a person can act on it.
public struct TLSError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable { case material, connect, handshake, connection }
    public let description: String
    /// `connect`: nothing answered at TCP level; `handshake`: TLS refused (certificates, versions).
    public let kind: Kind

    public init(_ description: String, kind: Kind = .material) {
        self.description = description
        self.kind = kind
    }
}
