import Crypto
import CryoLinux
import Glibc

/// A content digest. Only `sha256:<64 lowercase hex>` is accepted; anything else is
/// refused with a message saying what was wrong.
public struct Digest: Hashable, Sendable, CustomStringConvertible, Codable {
    public let hex: String

    public init(_ string: String) throws {
        guard let colon = string.firstIndex(of: ":") else {
            throw CryoFailure(.invalidArgument, "invalid digest \"\(string)\": expected \"sha256:<64 hex digits>\"")
        }
        let algorithm = string[..<colon]
        let hex = string[string.index(after: colon)...]
        guard algorithm == "sha256" else {
            throw CryoFailure(.invalidArgument, "invalid digest \"\(string)\": algorithm \"\(algorithm)\" is not supported (only sha256)")
        }
        guard hex.utf8.count == 64 else {
            throw CryoFailure(.invalidArgument, "invalid digest \"\(string)\": sha256 needs 64 hex digits, got \(hex.utf8.count)")
        }
        guard hex.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
            throw CryoFailure(.invalidArgument, "invalid digest \"\(string)\": only lowercase hex digits are allowed after \"sha256:\"")
        }
        self.hex = String(hex)
    }

    init(hexUnchecked hex: String) { self.hex = hex }

    public var description: String { "sha256:" + hex }

    public init(from decoder: Decoder) throws {
        try self.init(decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// The digest of bytes in memory (small blobs: manifests, configs).
    public static func of(_ bytes: some Sequence<UInt8>) -> Digest {
        var h = SHA256()
        h.update(data: Array(bytes))
        return Digest(finalizing: h)
    }

    /// The digest of a file, read in 1 MiB chunks (layers are never held in memory).
    public static func of(file path: String) throws -> Digest {
        let fd = try sys(open(path, O_RDONLY | O_CLOEXEC), "open", path)
        defer { close(fd) }
        var h = SHA256()
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buf.withUnsafeMutableBytes { b in retryingEINTR { read(fd, b.baseAddress, b.count) } }
            if n < 0 { throw SyscallError("read", path) }
            if n == 0 { break }
            buf.withUnsafeBytes { h.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        return Digest(finalizing: h)
    }

    public init(finalizing h: SHA256) {
        let hexDigits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for b in h.finalize() {
            out.append(hexDigits[Int(b >> 4)])
            out.append(hexDigits[Int(b & 0xf)])
        }
        hex = String(decoding: out, as: UTF8.self)
    }

    /// Throws "digest mismatch for <what>: expected …, got …" unless `actual` is `self`.
    public func verify(_ actual: Digest, what: String) throws {
        guard actual == self else {
            throw CryoFailure(.invalidArgument, "digest mismatch for \(what): expected \(self), got \(actual)")
        }
    }
}
