import Glibc

/// An Ethernet address of a container's interface. cryo gives every endpoint one of its own and
/// records it, so a restore (or a migration) brings the interface back with the same MAC and
/// the segment's neighbour tables stay right.
public struct MACAddress: Hashable, Sendable, CustomStringConvertible, Codable {
    public let bytes: [UInt8]

    /// Parses "02:42:c6:12:00:05" (also with "-"); nil for anything else. Refuses a multicast
    /// (group bit set) or all-zero address: the kernel would not give it to an interface.
    public init?(_ text: String) {
        let parts = text.split(separator: text.contains("-") ? "-" : ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var b: [UInt8] = []
        for p in parts {
            guard p.count == 2, let v = UInt8(p, radix: 16) else { return nil }
            b.append(v)
        }
        guard b[0] & 1 == 0, b.contains(where: { $0 != 0 }) else { return nil }
        bytes = b
    }

    init(raw: [UInt8]) { bytes = raw }

    /// Why `text` is not a usable MAC (for the API's 400), nil if it is one.
    public static func problem(_ text: String) -> String? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 6, parts.allSatisfy({ $0.count == 2 && UInt8($0, radix: 16) != nil }),
           let first = UInt8(parts[0], radix: 16), first & 1 == 1 {
            return "invalid MAC address \(text): a multicast address cannot be an interface's"
        }
        return MACAddress(text) == nil ? "invalid MAC address \(text): want six hex pairs like 02:42:c6:12:00:05" : nil
    }

    /// A random locally administered unicast address (02:xx:… style), for an endpoint that was
    /// given none; recorded with the container so every start and restore reuses it.
    public static func random() -> MACAddress {
        var g = SystemRandomNumberGenerator()
        var b = (0..<6).map { _ in UInt8.random(in: 0...255, using: &g) }
        b[0] = (b[0] & 0xfc) | 0x02
        if b[1...].allSatisfy({ $0 == 0 }) { b[5] = 1 }
        return MACAddress(raw: b)
    }

    public var description: String { bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":") }

    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let m = MACAddress(s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a MAC address: \(s)"))
        }
        self = m
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
