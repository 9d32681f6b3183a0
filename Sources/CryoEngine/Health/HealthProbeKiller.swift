import CryoLinux
import Glibc
import Synchronization

/// Ends a probe that ran out of time (or whose monitor is being stopped): SIGKILL to every
/// process under its `cryo-runtime exec` — the probe and whatever it started — which then
/// exits with it. `cryo-runtime exec` forwards catchable signals only, and a hung probe may
/// ignore those, so the processes themselves are killed.
///
/// Holds its own copy of the runtime's pidfd: the descendants are only looked up while that
/// process has not exited (a reaped pid may be reused by anything on the host).
final class HealthProbeKiller: Sendable {
    let pid: pid_t
    private let state: Mutex<(pidfd: Int32, fired: Bool, timedOut: Bool)>

    init(pid: pid_t, pidfd: Int32) {
        self.pid = pid
        state = Mutex((pidfd >= 0 ? dup(pidfd) : -1, false, false))
    }

    /// Whether the probe was killed for running past its timeout.
    var timedOut: Bool { state.withLock { $0.timedOut } }

    /// Kills the probe's processes once; a no-op after `close` or when it has exited.
    /// (Walks /proc: call it off the engine's actor.)
    func kill(timedOut: Bool) {
        state.withLock { s in
            guard !s.fired, s.pidfd >= 0 else { return }
            s.fired = true
            var p = pollfd(fd: s.pidfd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 0) == 0 else { return }   // readable: it has exited already
            s.timedOut = timedOut
            for d in Processes.descendants(of: pid) { Glibc.kill(d, SIGKILL) }
        }
    }

    /// The probe is over: no kill may happen any more (its pid may be reused).
    func close() {
        state.withLock { s in
            if s.pidfd >= 0 { Glibc.close(s.pidfd) }
            s.pidfd = -1
        }
    }
}
