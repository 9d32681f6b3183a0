import CryoHTTP
import CryoTLS
import NIOCore

/// A reliable, ordered, two-way byte stream between two cryods: a hijacked API connection
/// on the receiving side (`RawStream`), a TLS (or unix-socket) connection on the sending
/// side. Migration speaks its framed protocol (`FrameChannel`) over one of these and relays
/// CRIU's page-server stream over a second one.
public protocol ByteStream: Sendable {
    /// The next bytes; nil once the peer has closed its sending side.
    func read() async throws -> [UInt8]?
    /// Returns once the bytes are handed to the transport (with back-pressure).
    func write(_ bytes: [UInt8]) async throws
    /// Shuts our sending side; reading goes on.
    func closeWrite() async
    func close() async
    /// The same as read/write without copying into arrays (the page relay's bulk path).
    func readBuffer() async throws -> ByteBuffer?
    func writeBuffer(_ buffer: ByteBuffer) async throws
}

extension ByteStream {
    public func readBuffer() async throws -> ByteBuffer? {
        try await read().map { ByteBuffer(bytes: $0) }
    }
    public func writeBuffer(_ buffer: ByteBuffer) async throws {
        try await write(Array(buffer.readableBytesView))
    }
}

extension RawStream: ByteStream {}

/// The source's connection to a target over mutual TLS.
extension TLSByteStream: ByteStream {}

/// A connection to a cryod's unix socket (a target on this machine).
public func connectUnixStream(path: String) async throws -> any ByteStream {
    try await RawStream.connect(unixPath: path)
}
