import SwiftProtobuf

#if canImport(Glibc)
    import Glibc
#endif

/// One CRIU image file, framed as CRIU writes it: a magic header (the common or service magic,
/// then the image's own; inventory.img has only its own), then entries, each a 32-bit
/// little-endian size followed by that many bytes of one protobuf message.
///
/// Images that append raw payload after an entry (pipes-data, sk-queues, …) are not read here.
public struct ImageFile: Sendable {
    public let path: String
    public let magic: UInt32
    /// The protobuf bytes of each entry, in file order.
    public let entries: [[UInt8]]

    /// The most an image file may hold; CRIU's metadata images are small (pages are raw files).
    public static let maxSize = 256 << 20

    public init(path: String, expecting expected: UInt32) throws {
        try self.init(path: path, bytes: try Self.readAll(path), expecting: expected)
    }

    public init(path: String, bytes: [UInt8], expecting expected: UInt32) throws {
        self.path = path
        var offset = 0
        func word() throws -> UInt32 {
            guard bytes.count - offset >= 4 else {
                throw InspectError("\(path): truncated at byte \(offset) (want a 4-byte word, \(bytes.count - offset) left)")
            }
            let v = UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
            offset += 4
            return v
        }
        var first = try word()
        if first == ImageMagic.common || first == ImageMagic.service { first = try word() }
        guard first == expected else {
            throw InspectError("\(path): magic 0x\(String(first, radix: 16)), expected 0x\(String(expected, radix: 16))")
        }
        magic = first
        var entries: [[UInt8]] = []
        while offset < bytes.count {
            let size = Int(try word())
            guard size <= bytes.count - offset else {
                throw InspectError("\(path): entry \(entries.count) at byte \(offset - 4) claims \(size) bytes, \(bytes.count - offset) left")
            }
            entries.append(Array(bytes[offset..<offset + size]))
            offset += size
        }
        self.entries = entries
    }

    /// Every entry decoded as `M` (proto2 required fields are not enforced: CRIU decides those).
    public func messages<M: SwiftProtobuf.Message>(_ type: M.Type) throws -> [M] {
        try entries.enumerated().map { i, bytes in
            do { return try M(serializedBytes: bytes, partial: true) } catch {
                throw InspectError("\(path): entry \(i) is not a valid \(M.protoMessageName): \(error)")
            }
        }
    }

    /// The single entry of a one-entry image (core, mm, fs, inventory, utsns, stats).
    public func only<M: SwiftProtobuf.Message>(_ type: M.Type) throws -> M {
        let all = try messages(type)
        guard let first = all.first else { throw InspectError("\(path): no \(M.protoMessageName) entry") }
        return first
    }

    static func readAll(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw InspectError("open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw InspectError("read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { return out }
            out += buf[0..<n]
            guard out.count <= maxSize else { throw InspectError("\(path): larger than \(maxSize) bytes, not a CRIU metadata image") }
        }
    }
}
