import FoundationEssentials

/// Links on a user-defined network (`--link NAME[:ALIAS]` with `--network`, docker-compose's
/// `links:`): the linking container alone resolves ALIAS (and NAME) to the linked container's
/// address on that network, kept in its own /etc/hosts, by name, so a linked container that is
/// recreated under the same name is found again.
public enum NetworkLinks {
    public struct Link: Sendable, Equatable {
        public var target: String
        public var alias: String
        /// The stored form, "TARGET:ALIAS".
        public var text: String { target + ":" + alias }
    }

    /// "NAME" or "NAME:ALIAS" (a leading "/" on either dropped, as the docker CLI may send
    /// "/name:/other/alias"), each part a host name; duplicates dropped in order.
    public static func parse(_ raw: [String]?) throws -> [Link] {
        var out: [Link] = []
        for entry in raw ?? [] {
            let parts = entry.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map { part -> String in
                let s = String(part)
                return s.hasPrefix("/") ? String(s.split(separator: "/").last ?? "") : s
            }
            let link = Link(target: parts[0], alias: parts.count > 1 ? parts[1] : parts[0])
            for n in [link.target, link.alias] {
                guard !n.isEmpty, n.utf8.count <= 253,
                      n.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) else {
                    throw EngineError.bad("invalid link \"\(entry)\": want NAME[:ALIAS], each 1 to 253 of [a-zA-Z0-9_.-]")
                }
            }
            if !out.contains(link) { out.append(link) }
        }
        return out
    }
}
