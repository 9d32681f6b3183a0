/// An IPv4 address as a 32-bit number (host order).
public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let value: UInt32

    public init(_ value: UInt32) { self.value = value }

    /// Parses dotted-quad notation ("198.18.0.1"); nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let octet = UInt32(p), octet <= 255 else { return nil }
            if p.count > 1 && p.first == "0" { return nil }   // no octal-looking octets
            v = v << 8 | octet
        }
        value = v
    }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    }

    public var isLoopback: Bool { value >> 24 == 127 }

    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }
}

/// An IPv4 subnet in CIDR notation whose host bits are zero ("198.18.0.0/24").
public struct IPv4Subnet: Hashable, Sendable, CustomStringConvertible {
    public let network: IPv4Address
    public let prefix: Int

    public init(network: IPv4Address, prefix: Int) {
        self.prefix = prefix
        self.network = IPv4Address(network.value & IPv4Subnet.mask(prefix))
    }

    /// Parses "a.b.c.d/n". Refuses host bits (naming the subnet that was probably meant)
    /// and prefixes outside 8...30 (a bridge network needs a gateway and at least one host).
    public static func parse(_ text: String) throws -> IPv4Subnet {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let addr = IPv4Address(String(parts[0])),
              parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let prefix = Int(parts[1]), (0...32).contains(prefix)
        else { throw NetworkError.invalidSubnet(text, "not IPv4 CIDR notation like 198.18.5.0/24") }
        guard (8...30).contains(prefix) else {
            throw NetworkError.invalidSubnet(text, "prefix length must be between 8 and 30")
        }
        let subnet = IPv4Subnet(network: addr, prefix: prefix)
        guard subnet.network == addr else {
            throw NetworkError.invalidSubnet(text, "host bits are set (did you mean \(subnet)?)")
        }
        return subnet
    }

    /// `--ip-range`: CIDR with host bits zero, any prefix 1...32, inside `subnet`.
    public static func parseRange(_ text: String, in subnet: IPv4Subnet) throws -> IPv4Subnet {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let addr = IPv4Address(String(parts[0])),
              parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let prefix = Int(parts[1]), (1...32).contains(prefix)
        else { throw NetworkError.invalidIPRange(text, "not IPv4 CIDR notation like 198.18.5.128/25") }
        let r = IPv4Subnet(network: addr, prefix: prefix)
        guard r.network == addr else { throw NetworkError.invalidIPRange(text, "host bits are set (did you mean \(r)?)") }
        guard prefix >= subnet.prefix, subnet.contains(addr) else {
            throw NetworkError.invalidIPRange(text, "not inside subnet \(subnet)")
        }
        return r
    }

    /// The addresses host-local may hand out from `range` (a sub-CIDR of this subnet): the
    /// range without this subnet's network and broadcast addresses.
    public func allocationBounds(_ range: IPv4Subnet) -> (first: IPv4Address, last: IPv4Address) {
        (IPv4Address(max(range.network.value, firstHost.value)), IPv4Address(min(range.broadcast.value, lastHost.value)))
    }

    static func mask(_ prefix: Int) -> UInt32 { prefix == 0 ? 0 : UInt32.max << UInt32(32 - prefix) }

    public var mask: UInt32 { IPv4Subnet.mask(prefix) }
    public var broadcast: IPv4Address { IPv4Address(network.value | ~mask) }
    /// The first usable address: the default gateway.
    public var firstHost: IPv4Address { IPv4Address(network.value + 1) }
    public var lastHost: IPv4Address { IPv4Address(broadcast.value - 1) }

    public func contains(_ a: IPv4Address) -> Bool { a.value & mask == network.value }

    /// Whether `a` may be given to a host: inside, and neither the network nor the broadcast address.
    public func isHost(_ a: IPv4Address) -> Bool { contains(a) && a != network && a != broadcast }

    public func overlaps(_ other: IPv4Subnet) -> Bool {
        let m = IPv4Subnet.mask(min(prefix, other.prefix))
        return network.value & m == other.network.value & m
    }

    public var description: String { "\(network)/\(prefix)" }
}
