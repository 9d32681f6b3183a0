/// What CRIU measured during a dump, read from the `stats-dump` image it writes next
/// to the checkpoint (a CRIU image: two magic words, then one size-prefixed protobuf
/// `StatsEntry { DumpStatsEntry dump = 1; }`). Decoded by hand: only varint fields of
/// one nested message are needed, not CRIU's whole image schema.
public struct CRIUDumpStats: Codable, Sendable, Equatable {
    public var freezingTimeUs: UInt64 = 0
    public var frozenTimeUs: UInt64 = 0
    public var memdumpTimeUs: UInt64 = 0
    public var memwriteTimeUs: UInt64 = 0
    public var pagesScanned: UInt64 = 0
    public var pagesWritten: UInt64 = 0
    public init() {}

    public static func parse(_ image: [UInt8]) -> CRIUDumpStats? {
        guard image.count >= 12 else { return nil }
        let size = Int(image[8]) | Int(image[9]) << 8 | Int(image[10]) << 16 | Int(image[11]) << 24
        guard size > 0, 12 + size <= image.count else { return nil }
        var outer = ProtoReader(Array(image[12..<(12 + size)]))
        while let (field, value) = outer.next() {
            guard field == 1, case .bytes(let inner) = value else { continue }
            var r = ProtoReader(inner)
            var s = CRIUDumpStats()
            while let (f, v) = r.next() {
                guard case .varint(let n) = v else { continue }
                switch f {
                case 1: s.freezingTimeUs = n
                case 2: s.frozenTimeUs = n
                case 3: s.memdumpTimeUs = n
                case 4: s.memwriteTimeUs = n
                case 5: s.pagesScanned = n
                case 7: s.pagesWritten = n
                default: break
                }
            }
            return s
        }
        return nil
    }
}

/// Minimal protobuf wire-format reader (varint and length-delimited fields).
struct ProtoReader {
    enum Value { case varint(UInt64), bytes([UInt8]), other }
    let bytes: [UInt8]
    var at = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func varint() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while at < bytes.count, shift < 64 {
            let b = bytes[at]
            at += 1
            result |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
        return nil
    }

    mutating func next() -> (Int, Value)? {
        guard at < bytes.count, let key = varint() else { return nil }
        let field = Int(key >> 3)
        switch key & 7 {
        case 0:
            guard let v = varint() else { return nil }
            return (field, .varint(v))
        case 2:
            // Compared as UInt64: a length near 2^64 must not trap in Int(n) or at + n.
            guard let n = varint(), n <= UInt64(bytes.count - at) else { return nil }
            let end = at + Int(n)
            defer { at = end }
            return (field, .bytes(Array(bytes[at..<end])))
        case 1:
            guard at + 8 <= bytes.count else { return nil }
            at += 8
            return (field, .other)
        case 5:
            guard at + 4 <= bytes.count else { return nil }
            at += 4
            return (field, .other)
        default:
            return nil
        }
    }
}
