/// Docker's restart policies as a pure type: which policy a request names (checked with
/// dockerd's messages), whether an exit restarts the container, and how long to wait first.
/// No clock, no I/O: the engine feeds it what happened (`Engine+RestartPolicy` acts on it).
public enum RestartPolicyDecision {
    public enum Policy: Equatable, Sendable {
        case no
        /// `on-failure[:N]`: only non-zero exits, at most `maxRetries` restarts (0: no limit).
        case onFailure(maxRetries: Int)
        case always
        case unlessStopped
    }

    /// The policy of a create or update request. A missing or empty name is `no` (Docker
    /// before 25 sent an empty name as its default); invalid ones are refused with dockerd's
    /// wording (400).
    public static func policy(_ p: RestartPolicy?) throws -> Policy {
        let name = p?.Name ?? ""
        let count = p?.MaximumRetryCount ?? 0
        switch name {
        case "", "no", "always", "unless-stopped":
            if count != 0 {
                throw EngineError.bad("invalid restart policy: maximum retry count can only be used with 'on-failure'" + (count < 0 ? " and cannot be negative" : ""))
            }
            return name == "always" ? .always : name == "unless-stopped" ? .unlessStopped : .no
        case "on-failure":
            if count < 0 { throw EngineError.bad("invalid restart policy: maximum retry count cannot be negative") }
            return .onFailure(maxRetries: count)
        default:
            throw EngineError.bad("invalid restart policy: unknown policy '\(name)'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'")
        }
    }

    /// A stored policy (already checked at create or update; anything odd counts as `no`).
    public static func stored(_ p: RestartPolicy?) -> Policy { (try? policy(p)) ?? .no }

    /// Whether the container's main process, having exited on its own with `exitCode`,
    /// is started again. `restarts`: the restarts already made for this run of restarts;
    /// `stoppedOnPurpose`: a stop, kill or removal asked for it (never restarted then).
    public static func restartsAfterExit(_ policy: Policy, exitCode: Int32, restarts: Int, stoppedOnPurpose: Bool) -> Bool {
        if stoppedOnPurpose { return false }
        switch policy {
        case .no: return false
        case .always, .unlessStopped: return true
        case .onFailure(let max): return exitCode != 0 && (max == 0 || restarts < max)
        }
    }

    /// Whether a container that is not running when cryod starts is started again: `always`
    /// even after a manual stop; `unless-stopped` and `on-failure` only when nothing stopped
    /// it on purpose (it was running when cryod or the machine went down, or exited on its
    /// own since). A container stopped by a checkpoint is left for its restore; one never
    /// started is left alone.
    public static func startsWithDaemon(_ policy: Policy, exitCode: Int32, restarts: Int, stop: StopCause?, everStarted: Bool) -> Bool {
        guard everStarted, stop != .checkpoint else { return false }
        switch policy {
        case .no: return false
        case .always: return true
        case .unlessStopped: return stop == nil
        case .onFailure: return restartsAfterExit(policy, exitCode: exitCode, restarts: restarts, stoppedOnPurpose: stop != nil)
        }
    }

    /// Why a container was stopped on purpose (kept in its record, so a restarted cryod knows).
    public enum StopCause: String, Codable, Sendable {
        /// `stop`, `kill`, `rm -f`, `update --restart no` during a back-off: a manual stop.
        case api
        /// A checkpoint that stopped it (or a migration that took it away): it comes back by
        /// a restore, not by a fresh start.
        case checkpoint
    }

    /// dockerd's back-off: 100 ms before the first restart, doubled for each one after it,
    /// at most a minute; back to 100 ms when the container had run for 10 s or more.
    public struct Backoff: Equatable, Sendable {
        public static let initialMilliseconds: Int64 = 100
        public static let maxMilliseconds: Int64 = 60_000
        public static let resetAfterSeconds: Double = 10
        /// The delay used for the last restart (0: none yet).
        public private(set) var lastMilliseconds: Int64 = 0
        public init() {}

        /// The delay before the next restart of a container that ran for `ranSeconds`.
        public mutating func next(ranSeconds: Double) -> Int64 {
            if ranSeconds >= Self.resetAfterSeconds { lastMilliseconds = 0 }
            lastMilliseconds = lastMilliseconds == 0 ? Self.initialMilliseconds : min(lastMilliseconds * 2, Self.maxMilliseconds)
            return lastMilliseconds
        }
    }
}
