/// One probe's outcome, as `State.Health.Log` shows it (times in RFC 3339 with nanoseconds).
public struct HealthcheckResult: Codable, Sendable, Equatable {
    public var Start: String
    public var End: String
    /// 0 healthy, anything else a failure; -1 when the probe could not run or timed out.
    public var ExitCode: Int
    public var Output: String

    public init(Start: String, End: String, ExitCode: Int, Output: String) {
        self.Start = Start
        self.End = End
        self.ExitCode = ExitCode
        self.Output = Output
    }
}

/// `State.Health` and the state machine behind it (dockerd's rules):
/// - a run begins `starting`;
/// - a probe that exits 0 makes it `healthy` and ends the failing streak;
/// - any other result counts towards the streak, except while still `starting` within the
///   start period (a slow start is not a failure); the streak reaching `retries` makes it
///   `unhealthy`;
/// - only the last `maxLog` results are kept.
public struct ContainerHealth: Codable, Sendable, Equatable {
    public static let starting = "starting", healthy = "healthy", unhealthy = "unhealthy"
    /// dockerd keeps five.
    public static let maxLog = 5

    public var Status: String
    public var FailingStreak: Int
    public var Log: [HealthcheckResult]

    public init(Status: String = ContainerHealth.starting, FailingStreak: Int = 0, Log: [HealthcheckResult] = []) {
        self.Status = Status
        self.FailingStreak = FailingStreak
        self.Log = Log
    }

    /// Takes one result; `inStartPeriod`: the probe began within the start period of this
    /// run. Returns the new status when it changed (for the `health_status` event).
    public mutating func record(_ result: HealthcheckResult, inStartPeriod: Bool, retries: Int) -> String? {
        let before = Status
        Log.append(result)
        if Log.count > Self.maxLog { Log.removeFirst(Log.count - Self.maxLog) }
        if result.ExitCode == 0 {
            FailingStreak = 0
            Status = Self.healthy
        } else if !(Status == Self.starting && inStartPeriod) {
            FailingStreak += 1
            if FailingStreak >= max(1, retries) { Status = Self.unhealthy }
        }
        return Status == before ? nil : Status
    }

    /// `docker ps`'s text for a running container: "healthy", "unhealthy", "health: starting".
    public var summary: String { Status == Self.starting ? "health: starting" : Status }
}
