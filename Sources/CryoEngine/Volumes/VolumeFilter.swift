import FoundationEssentials

/// `docker volume ls --filter` (dangling, name, label, driver) and `docker volume prune
/// --filter` (label, label!, all). Any other filter is refused, never ignored.
public struct VolumeFilter: Sendable, Equatable {
    public var dangling: Bool?
    public var names: [String] = []
    public var drivers: [String] = []
    public var labels: [String] = []
    public var notLabels: [String] = []
    /// prune: also named volumes (API 1.42+: only anonymous ones by default).
    public var all = false

    public init() {}

    public static func parse(_ json: String?, prune: Bool) throws -> VolumeFilter {
        var f = VolumeFilter()
        guard let json, !json.isEmpty else { return f }
        guard let obj = try? JSONDecoder().decode([String: PruneFilter.FilterValues].self, from: Data(json.utf8)) else {
            throw EngineError.bad("invalid filters: \(json): expected {\"name\": [values]} or {\"name\": {\"value\": true}}")
        }
        func bool(_ key: String, _ v: [String]) throws -> Bool {
            guard v.count == 1, ["true", "1", "false", "0"].contains(v[0].lowercased()) else {
                throw EngineError.bad("invalid filter '\(key)=\(v.joined(separator: ","))': true or false is expected")
            }
            return v[0] == "1" || v[0].lowercased() == "true"
        }
        for (key, raw) in obj {
            let values = raw.values
            switch (key, prune) {
            case ("label", _): f.labels = values
            case ("label!", _): f.notLabels = values
            case ("all", true): f.all = try bool(key, values)
            case ("dangling", false): f.dangling = try bool(key, values)
            case ("name", false): f.names = values
            case ("driver", false): f.drivers = values
            default:
                throw EngineError.bad("invalid filter '\(key)': volume \(prune ? "prune accepts label, label! and all" : "ls accepts dangling, name, label and driver")")
            }
        }
        return f
    }

    /// `inUse`: some container mounts it.
    public func matches(_ v: Volume, inUse: Bool) -> Bool {
        if let dangling, dangling == inUse { return false }
        // name: a substring, as dockerd matches it.
        if !names.isEmpty && !names.contains(where: { v.name.contains($0) }) { return false }
        if !drivers.isEmpty && !drivers.contains(VolumeStore.driver) { return false }
        func has(_ spec: String) -> Bool {
            let kv = spec.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard let value = v.labels[kv[0]] else { return false }
            return kv.count == 1 || value == kv[1]
        }
        return labels.allSatisfy(has) && !notLabels.contains(where: has)
    }
}
