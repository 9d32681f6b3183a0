import FoundationEssentials

/// The `--filter` of `docker container|image|network prune`: `until` (a timestamp or a Go
/// duration before now), `label` / `label!` (`key` or `key=value`) and, for images,
/// `dangling` — the filters dockerd's prunes accept. Any other filter is refused, never ignored.
public struct PruneFilter: Sendable, Equatable {
    /// What is pruned: it decides which filters are accepted.
    public enum Kind: String, Sendable { case container, image, network }
    public var until: Double?
    public var labels: [String] = []
    public var notLabels: [String] = []
    /// Images: only untagged ones (true, the default) or every unused one (false: `prune -a`).
    public var dangling = true

    public init() {}

    /// `filters` as the clients send it: `{"label":{"a=b":true}}` (docker CLI) or
    /// `{"label":["a=b"]}` (docker-py).
    public static func parse(_ json: String?, now: Double, kind: Kind = .container) throws -> PruneFilter {
        var f = PruneFilter()
        guard let json, !json.isEmpty else { return f }
        guard let obj = try? JSONDecoder().decode([String: FilterValues].self, from: Data(json.utf8)) else {
            throw EngineError.bad("invalid filters: \(json): expected {\"name\": [values]} or {\"name\": {\"value\": true}}")
        }
        for (key, raw) in obj {
            let values = raw.values
            switch key {
            case "until":
                guard values.count == 1, let t = untilTime(values[0], now: now) else {
                    throw EngineError.bad("invalid filter 'until=\(values.joined(separator: ","))': a timestamp or a duration such as 10m is expected")
                }
                f.until = t
            case "label": f.labels = values
            case "label!": f.notLabels = values
            case "dangling" where kind == .image:
                guard values.count == 1, let b = ["true": true, "1": true, "false": false, "0": false][values[0].lowercased()] else {
                    throw EngineError.bad("invalid filter 'dangling=\(values.joined(separator: ","))': true or false is expected")
                }
                f.dangling = b
            default:
                let accepted = kind == .image ? "until, label, label! and dangling" : "until, label and label!"
                throw EngineError.bad("invalid filter '\(key)': \(kind.rawValue) prune accepts \(accepted)")
            }
        }
        return f
    }

    /// One filter's values in either of the two forms.
    struct FilterValues: Decodable {
        var values: [String]
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let list = try? c.decode([String].self) { values = list; return }
            values = try c.decode([String: Bool].self).filter(\.value).map(\.key).sorted()
        }
    }

    /// Does a container with these labels, created at `created` (unix seconds), match?
    public func matches(labels have: [String: String], created: Double) -> Bool {
        if let until, created >= until { return false }
        func has(_ spec: String) -> Bool {
            let kv = spec.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard let v = have[kv[0]] else { return false }
            return kv.count == 1 || v == kv[1]
        }
        return labels.allSatisfy(has) && !notLabels.contains(where: has)
    }

    /// Unix seconds (possibly fractional), RFC 3339, or a Go duration ("90s", "1h30m") before `now`.
    static func untilTime(_ s: String, now: Double) -> Double? {
        if let d = Double(s) { return d }
        if let t = LogReader.unixTime(s) { return t }
        if let d = goDuration(s) { return now - d }
        return nil
    }

    /// Go's time.ParseDuration for h, m, s, ms, us, ns units: seconds.
    static func goDuration(_ s: String) -> Double? {
        let units: [(String, Double)] = [("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("h", 3600), ("m", 60), ("s", 1)]
        var rest = Substring(s), total = 0.0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let num = rest.prefix { $0.isNumber || $0 == "." }
            guard let v = Double(num) else { return nil }
            rest = rest.dropFirst(num.count)
            guard let (u, scale) = units.first(where: { rest.hasPrefix($0.0) }) else { return nil }
            rest = rest.dropFirst(u.count)
            total += v * scale
        }
        return total
    }
}
