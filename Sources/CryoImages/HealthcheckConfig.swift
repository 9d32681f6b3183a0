/// Docker's HEALTHCHECK as images (`config.Healthcheck`) and create requests
/// (`Config.Healthcheck`) carry it. Durations are nanoseconds; 0 or absent means "not set"
/// (the image's value, else the default). `Test` is ["CMD", args…], ["CMD-SHELL", command],
/// ["NONE"] (no health check), or empty (the image's test).
public struct HealthcheckConfig: Codable, Sendable, Equatable {
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
