import Glibc
import Synchronization

/// Step timings for profiling the runtime's hot paths: with CRYO_TRACE=1 in the
/// environment, `Trace.mark("step")` prints the monotonic clock (@, ms, to line up
/// processes), the milliseconds since the previous mark and since start to stderr. Costs one getenv when off.
public enum Trace {
    static let enabled: Bool = getenv("CRYO_TRACE") != nil
    static let log = TraceLog(fd: 2)

    /// The environment of a child that should trace too (the container's init).
    public static var childEnvironment: [String] { enabled && log.childrenTrace ? ["CRYO_TRACE=1"] : [] }

    /// For a process whose fds 0-2 will become a container's stdio (the monitor): marks go
    /// to a copy of the current stderr, and children (the container's init, whose stderr is
    /// the container's) do not trace, so nothing lands in the container's log.
    public static func keepOutput() {
        guard enabled else { return }
        let copy = fcntl(2, F_DUPFD_CLOEXEC, 10)
        log.redirect(to: copy >= 0 ? copy : nil, childrenTrace: false)
    }

    @inline(__always)
    public static func mark(_ step: @autoclosure () -> String) {
        guard enabled else { return }
        log.mark(step())
    }
}

/// The trace lines of one process. Marks come from any thread (NIO's, the blocking pool,
/// the monitor's netlink-unlock thread), so the state sits behind one lock and each line
/// is written while it is held: lines never interleave, and "since the previous mark" is
/// the previous line's.
public final class TraceLog: Sendable {
    struct State {
        var start: Monotonic
        var last: Monotonic
        var fd: Int32
        var childrenTrace = true
    }

    let state: Mutex<State>

    public init(fd: Int32) {
        let t = Monotonic.now()
        state = Mutex(State(start: t, last: t, fd: fd))
    }

    var childrenTrace: Bool { state.withLock { $0.childrenTrace } }

    func redirect(to fd: Int32?, childrenTrace: Bool) {
        state.withLock { s in
            if let fd { s.fd = fd }
            s.childrenTrace = childrenTrace
        }
    }

    /// `trace[PID] @NOW +SINCE_LAST ms (SINCE_START ms) STEP`
    public func mark(_ step: String) {
        state.withLock { s in
            let t = Monotonic.now()
            let line = "trace[\(getpid())] @\(Self.fmt(t.milliseconds)) +\(Self.fmt(t.seconds(since: s.last) * 1000)) ms (\(Self.fmt(t.seconds(since: s.start) * 1000)) ms) \(step)\n"
            s.last = t
            let bytes = Array(line.utf8)
            var off = 0
            while off < bytes.count {
                let n = bytes.withUnsafeBytes { write(s.fd, $0.baseAddress! + off, $0.count - off) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { break }
                off += n
            }
        }
    }

    static func fmt(_ v: Double) -> String {
        let x = (v * 100).rounded() / 100
        return String(x)
    }
}
