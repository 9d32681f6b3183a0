/// What went wrong with TLS material or a TLS connection, said so a person can act on it.
public struct TLSError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable { case material, connect, handshake, connection, closed }
    public let description: String
    /// `connect`: nothing answered at TCP level; `handshake`: TLS refused (certificates,
    /// versions); `connection`: the connection failed after the handshake; `closed`: it was
    /// already closed (with TLS 1.3 a server that refuses a client certificate does so after
    /// the client's handshake has completed, and closes).
    public let kind: Kind
    /// The alert the peer ended the connection with, when it sent one.
    public let alert: TLSAlert?

    public init(_ description: String, kind: Kind = .material, alert: TLSAlert? = nil) {
        self.description = description
        self.kind = kind
        self.alert = alert
    }
}
