import Glibc

/// A point on the monotonic clock (CLOCK_MONOTONIC): the one clock cryo measures durations
/// and deadlines with. Wall-clock times (Docker's timestamps) stay `Date`/`rfc3339Now`.
public struct Monotonic: Sendable, Comparable, Hashable {
    public let nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static func now() -> Monotonic {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Monotonic(nanoseconds: UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec))
    }

    /// This point moved by `seconds` (a deadline).
    public func adding(seconds: Double) -> Monotonic {
        Monotonic(nanoseconds: UInt64(max(0, Double(nanoseconds) + seconds * 1e9)))
    }

    public func adding(milliseconds: Int64) -> Monotonic { adding(seconds: Double(milliseconds) / 1000) }

    /// Seconds from this point to now.
    public var elapsedSeconds: Double { Monotonic.now().seconds(since: self) }

    /// Milliseconds from this point to now.
    public var elapsedMilliseconds: Double { elapsedSeconds * 1000 }

    /// Seconds from `earlier` to this point (negative if `earlier` is later).
    public func seconds(since earlier: Monotonic) -> Double {
        (Double(nanoseconds) - Double(earlier.nanoseconds)) / 1e9
    }

    /// Whole milliseconds from now until this point, 0 once it has passed.
    public var millisecondsLeft: Int64 {
        let now = Monotonic.now()
        return now >= self ? 0 : Int64((nanoseconds - now.nanoseconds) / 1_000_000)
    }

    public var hasPassed: Bool { Monotonic.now() >= self }

    /// Milliseconds since the clock's origin (boot), for lining up processes' trace lines.
    public var milliseconds: Double { Double(nanoseconds) / 1e6 }

    public static func < (a: Monotonic, b: Monotonic) -> Bool { a.nanoseconds < b.nanoseconds }
}
