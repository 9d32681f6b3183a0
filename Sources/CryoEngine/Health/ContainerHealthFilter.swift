import FoundationEssentials

/// The `health` filter of `GET /containers/json`: starting, healthy, unhealthy, or none
/// (containers without a health check). Values are ORed; any other value is refused.
public struct ContainerHealthFilter: Sendable, Equatable {
    public static let values: Set<String> = [ContainerHealth.starting, ContainerHealth.healthy, ContainerHealth.unhealthy, "none"]
    public var wanted: Set<String>

    /// nil when the request has no health filter (its other filters are left to their owners).
    public static func parse(_ json: String?) throws -> ContainerHealthFilter? {
        guard let json, !json.isEmpty else { return nil }
        guard let obj = try? JSONDecoder().decode([String: PruneFilter.FilterValues].self, from: Data(json.utf8)) else {
            throw EngineError.bad("invalid filter: \(json): expected {\"name\": [values]} or {\"name\": {\"value\": true}}")
        }
        guard let raw = obj["health"] else { return nil }
        return try ContainerHealthFilter(values: raw.values)
    }

    /// The filter's values, each checked.
    public init(values raw: [String]) throws {
        if let bad = raw.first(where: { !Self.values.contains($0) }) {
            throw EngineError.bad("Unrecognised filter value for health: \(bad) (want starting, healthy, unhealthy or none)")
        }
        wanted = Set(raw)
    }

    /// A container's health word for the filter: its status, "none" without a health check.
    public static func word(_ c: StoredContainer) -> String { c.health?.Status ?? "none" }

    public func matches(_ c: StoredContainer) -> Bool { wanted.isEmpty || wanted.contains(Self.word(c)) }
}
