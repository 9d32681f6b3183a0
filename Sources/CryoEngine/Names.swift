import CryoLinux
import FoundationEssentials

/// Container names and ids, Docker's way.
public enum Names {
    static let adjectives = ["brave", "calm", "cool", "eager", "frosty", "gentle", "happy", "icy", "jolly", "keen",
                             "lucid", "merry", "nifty", "polar", "quiet", "sharp", "stoic", "tender", "vivid", "wintry"]
    static let nouns = ["curie", "darwin", "einstein", "fermi", "galileo", "hopper", "kepler", "lovelace", "meitner",
                        "newton", "noether", "pascal", "ritchie", "shannon", "tesla", "thompson", "turing", "wozniak"]

    public static func randomID() -> String { randomHexID() }

    public static func randomName() -> String {
        "\(adjectives.randomElement()!)_\(nouns.randomElement()!)"
    }

    /// The longest name: a DNS name's limit.
    public static let maxLength = 253

    /// Docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]+ (a leading "/" is dropped), at most 253 long.
    public static func validate(_ name: String) throws -> String {
        let n = name.hasPrefix("/") ? String(name.dropFirst()) : name
        let ok = n.count >= 2 && n.utf8.enumerated().allSatisfy { i, c in
            let alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
            return alnum || (i > 0 && (c == 0x5f || c == 0x2e || c == 0x2d))
        }
        guard ok else { throw EngineError.bad("Invalid container name (\(name)), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed") }
        // The name is also the container's host name on its network (/etc/hosts, DNS).
        guard n.utf8.count <= maxLength else {
            throw EngineError.bad("Invalid container name (\(n.prefix(40))…): \(n.utf8.count) characters, at most \(maxLength) are allowed (it is the container's host name on its network)")
        }
        return n
    }

    /// Checkpoint names become directory names.
    public static func validateCheckpoint(_ name: String) throws {
        let ok = !name.isEmpty && name.count <= 128 && name != "." && name != ".." && name.utf8.enumerated().allSatisfy { i, c in
            let alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
            return alnum || (i > 0 && (c == 0x5f || c == 0x2e || c == 0x2d))
        }
        guard ok else { throw EngineError.bad("invalid checkpoint name \"\(name)\": use letters, digits, '_', '.' and '-'") }
    }
}
