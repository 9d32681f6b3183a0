import FoundationEssentials

/// `GET /containers/json?filters=…` (`docker ps --filter`): id, name, label, label!, status,
/// exited, network, volume, ancestor, health. docker-compose finds its project's containers by label
/// (`com.docker.compose.project=P`, `…service=S`), so an ignored filter would hand it every
/// container of the host. Any other filter is refused, never ignored.
public struct ContainerListFilter: Sendable, Equatable {
    public var ids: [String] = []
    public var names: [String] = []
    public var labels: [String] = []
    public var notLabels: [String] = []
    public var statuses: [String] = []
    public var exitCodes: [Int32] = []
    public var networks: [String] = []
    public var volumes: [String] = []
    public var ancestors: [String] = []
    /// `health=starting|healthy|unhealthy|none` (see ContainerHealthFilter).
    public var health: ContainerHealthFilter?

    public init() {}

    public var isEmpty: Bool { self == ContainerListFilter() }

    static let knownStatuses: Set<String> = ["created", "restarting", "running", "removing", "paused", "exited", "dead"]

    public static func parse(_ json: String?) throws -> ContainerListFilter {
        var f = ContainerListFilter()
        guard let json, !json.isEmpty else { return f }
        guard let obj = try? JSONDecoder().decode([String: PruneFilter.FilterValues].self, from: Data(json.utf8)) else {
            throw EngineError.bad("invalid filters: \(json): expected {\"name\": [values]} or {\"name\": {\"value\": true}}")
        }
        for (key, raw) in obj {
            let values = raw.values
            switch key {
            case "id": f.ids = values
            case "name": f.names = try checkedPatterns("name", values)
            case "label": f.labels = values
            case "label!": f.notLabels = values
            case "status":
                if let bad = values.first(where: { !knownStatuses.contains($0) }) {
                    throw EngineError.bad("invalid filter 'status=\(bad)': want one of \(knownStatuses.sorted().joined(separator: ", "))")
                }
                f.statuses = values
            case "exited":
                f.exitCodes = try values.map { v in
                    guard let n = Int32(v) else { throw EngineError.bad("invalid filter 'exited=\(v)': an exit code (integer) is expected") }
                    return n
                }
            case "network": f.networks = values
            case "volume": f.volumes = values
            case "ancestor": f.ancestors = values
            case "health": f.health = try ContainerHealthFilter(values: values)
            default:
                throw EngineError.bad("invalid filter '\(key)': cryo's container list accepts id, name, label, label!, status, exited, network, volume, ancestor and health")
            }
        }
        return f
    }

    /// A filter's values as regular expressions (dockerd's name filters are), refused if one
    /// does not compile.
    static func checkedPatterns(_ key: String, _ values: [String]) throws -> [String] {
        for v in values {
            do { _ = try Regex(v) } catch { throw EngineError.bad("invalid filter '\(key)=\(v)': not a regular expression: \(error)") }
        }
        return values
    }

    /// Whether `text` has a match of the regular expression `pattern` (checked at parse).
    static func search(_ pattern: String, in text: String) -> Bool {
        guard let r = try? Regex(pattern) else { return false }
        return text.contains(r)
    }

    /// Whether `c` passes every filter (values of one filter are alternatives, as in dockerd).
    public func matches(_ c: StoredContainer) -> Bool {
        // id: a prefix; name: a regular expression searched in "/NAME", as dockerd does (so
        // a plain name matches as a substring, and "^/web$" exactly).
        if !ids.isEmpty && !ids.contains(where: { c.id.hasPrefix($0) }) { return false }
        if let health, !health.matches(c) { return false }
        if !names.isEmpty && !names.contains(where: { Self.search($0, in: "/" + c.name) }) { return false }
        func has(_ spec: String) -> Bool {
            let kv = spec.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard let v = c.config.Labels?[kv[0]] else { return false }
            return kv.count == 1 || v == kv[1]
        }
        if !labels.allSatisfy(has) || notLabels.contains(where: has) { return false }
        if !statuses.isEmpty && !statuses.contains(c.status.rawValue) { return false }
        if !exitCodes.isEmpty && !(c.status == .exited && exitCodes.contains(c.exitCode)) { return false }
        if !networks.isEmpty {
            let mine = [c.networkName, c.networkID].compactMap { $0 }
            if !networks.contains(where: { n in mine.contains { $0 == n || ($0.count == 64 && n.count >= 12 && $0.hasPrefix(n)) } }) { return false }
        }
        if !volumes.isEmpty {
            let mine = (c.volumes ?? []).flatMap { [$0.name, $0.destination] }
            if !volumes.contains(where: { mine.contains($0) }) { return false }
        }
        if !ancestors.isEmpty {
            let id = c.imageID
            let hex = id.hasPrefix("sha256:") ? String(id.dropFirst(7)) : id
            if !ancestors.contains(where: { a in
                a == c.imageRef || a == id || (a.count >= 12 && hex.hasPrefix(a)) || c.imageRef == a + ":latest"
            }) { return false }
        }
        return true
    }
}
