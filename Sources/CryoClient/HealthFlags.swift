/// `--health-cmd/-interval/-timeout/-retries/-start-period/-start-interval` and
/// `--no-healthcheck`, mapped as the docker CLI maps them: any health flag sends a
/// Healthcheck whose unset fields are 0 (the image's value, else cryod's default), a command
/// becomes ["CMD-SHELL", cmd], and --no-healthcheck sends ["NONE"].
public struct HealthFlags: Sendable, Equatable {
    public var cmd: String?
    public var interval: String?
    public var timeout: String?
    public var startPeriod: String?
    public var startInterval: String?
    public var retries: Int?
    public var disabled = false

    public init() {}

    public var isEmpty: Bool {
        cmd == nil && interval == nil && timeout == nil && startPeriod == nil && startInterval == nil && retries == nil
    }

    /// The body's Healthcheck, nil when no health flag was given.
    public func body() throws -> HealthcheckBody? {
        if disabled {
            guard isEmpty else { throw ClientError.usage("--no-healthcheck conflicts with --health-* options") }
            return HealthcheckBody(Test: ["NONE"])
        }
        guard !isEmpty else { return nil }
        func duration(_ v: String?, _ flag: String) throws -> Int64 {
            guard let v else { return 0 }
            let ns = try parseGoDuration(v, flag: flag)
            guard ns >= 0 else { throw ClientError.usage("--\(flag) cannot be negative") }
            return ns
        }
        if let r = retries, r < 0 { throw ClientError.usage("--health-retries cannot be negative") }
        return HealthcheckBody(Test: cmd.flatMap { $0.isEmpty ? nil : ["CMD-SHELL", $0] },
                               Interval: try duration(interval, "health-interval"),
                               Timeout: try duration(timeout, "health-timeout"),
                               StartPeriod: try duration(startPeriod, "health-start-period"),
                               StartInterval: try duration(startInterval, "health-start-interval"),
                               Retries: retries ?? 0)
    }
}

/// The create body's Config.Healthcheck (durations in nanoseconds).
public struct HealthcheckBody: Codable, Sendable, Equatable {
    public var Test: [String]?
    public var Interval: Int64?
    public var Timeout: Int64?
    public var StartPeriod: Int64?
    public var StartInterval: Int64?
    public var Retries: Int?

    public init(Test: [String]? = nil, Interval: Int64? = nil, Timeout: Int64? = nil, StartPeriod: Int64? = nil,
                StartInterval: Int64? = nil, Retries: Int? = nil) {
        self.Test = Test
        self.Interval = Interval
        self.Timeout = Timeout
        self.StartPeriod = StartPeriod
        self.StartInterval = StartInterval
        self.Retries = Retries
    }
}

/// A Go duration as the docker CLI's duration flags take it: "30s", "1m30s", "1.5h", "500ms",
/// "-2s", "0"; units ns, us (µs), ms, s, m, h. Returns nanoseconds.
public func parseGoDuration(_ text: String, flag: String) throws -> Int64 {
    func bad() -> ClientError { ClientError.usage("invalid argument \"\(text)\" for \"--\(flag)\" flag: time: invalid duration \"\(text)\"") }
    var s = Substring(text)
    var sign: Double = 1
    if s.first == "-" || s.first == "+" { sign = s.first == "-" ? -1 : 1; s = s.dropFirst() }
    if s == "0" { return 0 }
    guard !s.isEmpty else { throw bad() }
    let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("μs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
    var total = 0.0
    while !s.isEmpty {
        let number = s.prefix { $0.isASCIIDigit || $0 == "." }
        guard !number.isEmpty, number != ".", let value = Double(number) else { throw bad() }
        s = s.dropFirst(number.count)
        let unitText = s.prefix { !($0.isASCIIDigit || $0 == ".") }
        guard let unit = units.first(where: { $0.0 == unitText }) else { throw bad() }
        s = s.dropFirst(unitText.count)
        total += value * unit.1
    }
    guard total < 9.2e18 else { throw bad() }
    return Int64(sign * total)
}
