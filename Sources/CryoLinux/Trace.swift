import Glibc

/// Step timings for profiling the runtime's hot paths: with CRYO_TRACE=1 in the
/// environment, `Trace.mark("step")` prints the monotonic clock (@, ms, to line up
/// processes), the milliseconds since the previous mark and since start to stderr. Costs one getenv when off.
public enum Trace {
    nonisolated(unsafe) static var enabled: Bool = getenv("CRYO_TRACE") != nil
    nonisolated(unsafe) static var start: Double = now()
    nonisolated(unsafe) static var last: Double = start

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) * 1000 + Double(ts.tv_nsec) / 1e6
    }

    nonisolated(unsafe) static var fd: Int32 = 2
    nonisolated(unsafe) static var childrenTrace = true

    /// The environment of a child that should trace too (the container's init).
    public static var childEnvironment: [String] { enabled && childrenTrace ? ["CRYO_TRACE=1"] : [] }

    /// For a process whose fds 0-2 will become a container's stdio (the monitor): marks go
    /// to a copy of the current stderr, and children (the container's init, whose stderr is
    /// the container's) do not trace, so nothing lands in the container's log.
    public static func keepOutput() {
        guard enabled else { return }
        let copy = fcntl(2, F_DUPFD_CLOEXEC, 10)
        if copy >= 0 { fd = copy }
        childrenTrace = false
    }

    @inline(__always)
    public static func mark(_ step: @autoclosure () -> String) {
        guard enabled else { return }
        let t = now()
        let line = "trace[\(getpid())] @\(fmt(t)) +\(fmt(t - last)) ms (\(fmt(t - start)) ms) \(step())\n"
        last = t
        _ = line.withCString { write(fd, $0, strlen($0)) }
    }

    static func fmt(_ v: Double) -> String {
        let x = (v * 100).rounded() / 100
        return String(x)
    }
}
