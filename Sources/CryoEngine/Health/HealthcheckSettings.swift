import CryoImages

/// A container's health check as it will run: the image's HEALTHCHECK with the create
/// request's fields laid over it, checked, and dockerd's defaults filled in.
public struct HealthProbePlan: Sendable, Equatable {
    /// The argv exec'd in the container (CMD-SHELL runs under /bin/sh -c).
    public var command: [String]
    public var interval: Int64
    public var timeout: Int64
    public var startPeriod: Int64
    public var startInterval: Int64
    /// Consecutive failures (after the start period) that make the container unhealthy.
    public var retries: Int
}

public enum HealthcheckSettings {
    /// dockerd's floor for every duration that is set (shorter values are refused, not rounded).
    public static let minimumDuration: Int64 = 1_000_000
    public static let defaultInterval: Int64 = 30_000_000_000
    public static let defaultTimeout: Int64 = 30_000_000_000
    public static let defaultStartPeriod: Int64 = 0
    public static let defaultStartInterval: Int64 = 5_000_000_000
    public static let defaultRetries = 3

    /// Field by field, as dockerd merges a create request with its image: the request's
    /// value where it set one (a non-empty Test, a non-zero duration or retry count), the
    /// image's otherwise. No request healthcheck: the image's as it is.
    public static func merge(container: HealthcheckConfig?, image: HealthcheckConfig?) -> HealthcheckConfig? {
        guard let image else { return container }
        guard var merged = container else { return image }
        if (merged.Test ?? []).isEmpty { merged.Test = image.Test }
        if (merged.Interval ?? 0) == 0 { merged.Interval = image.Interval }
        if (merged.Timeout ?? 0) == 0 { merged.Timeout = image.Timeout }
        if (merged.StartPeriod ?? 0) == 0 { merged.StartPeriod = image.StartPeriod }
        if (merged.StartInterval ?? 0) == 0 { merged.StartInterval = image.StartInterval }
        if (merged.Retries ?? 0) == 0 { merged.Retries = image.Retries }
        return merged
    }

    /// A create request's healthcheck, with dockerd's rules: a duration that is set is at
    /// least 1ms, Retries is not negative; and a Test cryo could not run is refused here
    /// rather than accepted and never probed.
    public static func validate(_ h: HealthcheckConfig?) throws {
        guard let h else { return }
        for (field, value) in [("Interval", h.Interval), ("Timeout", h.Timeout), ("StartPeriod", h.StartPeriod),
                               ("StartInterval", h.StartInterval)] {
            if let v = value, v != 0, v < minimumDuration {
                throw EngineError.bad("\(field) in Healthcheck cannot be less than 1ms (got \(v) ns)")
            }
        }
        if let r = h.Retries, r < 0 { throw EngineError.bad("Retries in Healthcheck cannot be negative (got \(r))") }
        let test = h.Test ?? []
        guard let kind = test.first else { return }
        switch kind {
        case "NONE":
            return
        case "CMD", "CMD-SHELL":
            guard test.count > 1, !test[1].isEmpty else {
                throw EngineError.bad("Healthcheck Test [\(kind)] has no command: want [\"\(kind)\", …]")
            }
            if test.contains(where: { $0.utf8.contains(0) }) {
                throw EngineError.bad("invalid Healthcheck Test: a value contains a NUL byte")
            }
        default:
            throw EngineError.bad("unknown Healthcheck Test type \"\(kind)\": want CMD, CMD-SHELL or NONE")
        }
    }

    /// What the monitor runs, or nil when the container has no health check (none set,
    /// an empty Test, ["NONE"], or an image's Test of a kind cryo does not know).
    public static func plan(_ h: HealthcheckConfig?) -> HealthProbePlan? {
        guard let h, let test = h.Test, let kind = test.first, test.count > 1 else { return nil }
        let command: [String]
        switch kind {
        case "CMD": command = Array(test.dropFirst())
        case "CMD-SHELL": command = ["/bin/sh", "-c"] + test.dropFirst()
        default: return nil
        }
        func or(_ v: Int64?, _ d: Int64) -> Int64 { (v ?? 0) > 0 ? v! : d }
        return HealthProbePlan(command: command, interval: or(h.Interval, defaultInterval), timeout: or(h.Timeout, defaultTimeout),
                               startPeriod: or(h.StartPeriod, defaultStartPeriod),
                               startInterval: or(h.StartInterval, defaultStartInterval),
                               retries: (h.Retries ?? 0) > 0 ? h.Retries! : defaultRetries)
    }
}
