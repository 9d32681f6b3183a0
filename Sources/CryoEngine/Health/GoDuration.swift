/// A duration in nanoseconds as Go prints a time.Duration ("30s", "1.5s", "500ms", "1m30s"),
/// for messages that name one the way the docker CLI's flags take it.
public enum GoDuration {
    public static func format(_ ns: Int64) -> String {
        if ns == 0 { return "0s" }
        if ns < 0 { return "-" + format(-ns) }
        if ns < 1_000 { return "\(ns)ns" }
        if ns < 1_000_000 { return fraction(ns, 1_000) + "µs" }
        if ns < 1_000_000_000 { return fraction(ns, 1_000_000) + "ms" }
        var out = ""
        let hours = ns / 3_600_000_000_000
        let minutes = (ns / 60_000_000_000) % 60
        if hours > 0 { out += "\(hours)h" }
        if hours > 0 || minutes > 0 { out += "\(minutes)m" }
        return out + fraction(ns % 60_000_000_000, 1_000_000_000) + "s"
    }

    /// `value / unit` with the fraction's trailing zeros dropped.
    static func fraction(_ value: Int64, _ unit: Int64) -> String {
        let whole = value / unit, rest = value % unit
        guard rest != 0 else { return String(whole) }
        var digits = String(rest)
        digits = String(repeating: "0", count: String(unit).count - 1 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
    }
}
