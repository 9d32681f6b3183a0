import FoundationEssentials

/// A container's names on its network besides its own (`--network-alias`, docker-compose's
/// service name and short id): written into its peers' /etc/hosts, so they resolve as the
/// container's name does.
public enum NetworkAliases {
    /// The endpoint's aliases, checked: each a host name (1 to 253 of [a-zA-Z0-9_.-], as an
    /// /etc/hosts entry needs), duplicates dropped in order.
    public static func from(_ e: NetworkingConfig.EndpointSettings?) throws -> [String] {
        var out: [String] = []
        for a in e?.Aliases ?? [] where !out.contains(a) {
            guard !a.isEmpty, a.utf8.count <= 253,
                  a.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) else {
                throw EngineError.bad("invalid network alias \"\(a)\": an alias must be 1 to 253 of [a-zA-Z0-9_.-]")
            }
            out.append(a)
        }
        return out
    }

    /// The container's names on the network for its /etc/hosts line: its name, then its aliases.
    public static func names(name: String, aliases: [String]?) -> [String] {
        var out = [name]
        for a in aliases ?? [] where !out.contains(a) { out.append(a) }
        return out
    }
}
