import CryoNetwork
import FoundationEssentials

/// `GET /networks?filters=…` (`docker network ls --filter`): name, id, label, driver, type,
/// scope. docker-compose looks up its project's networks by label and name; an ignored filter
/// would list every network. Any other filter is refused, never ignored.
public struct NetworkListFilter: Sendable, Equatable {
    public var names: [String] = []
    public var ids: [String] = []
    public var labels: [String] = []
    public var drivers: [String] = []
    /// "custom" or "builtin" (cryo0, which `bridge` names, is the only built-in one).
    public var types: [String] = []
    public var scopes: [String] = []

    public init() {}

    public static func parse(_ json: String?) throws -> NetworkListFilter {
        var f = NetworkListFilter()
        guard let json, !json.isEmpty else { return f }
        guard let obj = try? JSONDecoder().decode([String: PruneFilter.FilterValues].self, from: Data(json.utf8)) else {
            throw EngineError.bad("invalid filters: \(json): expected {\"name\": [values]} or {\"name\": {\"value\": true}}")
        }
        for (key, raw) in obj {
            let values = raw.values
            switch key {
            case "name": f.names = try ContainerListFilter.checkedPatterns("name", values)
            case "id": f.ids = values
            case "label": f.labels = values
            case "driver": f.drivers = values
            case "scope": f.scopes = values
            case "type":
                if let bad = values.first(where: { $0 != "custom" && $0 != "builtin" }) {
                    throw EngineError.bad("invalid filter 'type=\(bad)': want custom or builtin")
                }
                f.types = values
            default:
                throw EngineError.bad("invalid filter '\(key)': cryo's network list accepts name, id, label, driver, type and scope")
            }
        }
        return f
    }

    public func matches(_ n: NetworkConfig) -> Bool {
        // name: a regular expression; id: a substring, as dockerd matches them.
        if !names.isEmpty && !names.contains(where: { ContainerListFilter.search($0, in: n.name) }) { return false }
        if !ids.isEmpty && !ids.contains(where: { n.id.contains($0) }) { return false }
        if !drivers.isEmpty && !drivers.contains(n.driver) { return false }
        if !scopes.isEmpty && !scopes.contains("local") { return false }
        let builtin = n.name == NetworkDefaults.defaultName
        if !types.isEmpty && !types.contains(builtin ? "builtin" : "custom") { return false }
        return labels.allSatisfy { spec in
            let kv = spec.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard let v = n.labels[kv[0]] else { return false }
            return kv.count == 1 || v == kv[1]
        }
    }
}
