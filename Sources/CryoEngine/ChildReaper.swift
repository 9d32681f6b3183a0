import CShim
import CryoLinux
import Glibc
import NIOConcurrencyHelpers
import NIOPosix

/// Reaps the monitors cryod starts. A monitor is cryod's child until cryod exits (then
/// it is re-parented, and cryod's restart never touches it); nobody waits for it, so one
/// thread polls the monitors' pidfds and collects each exit. Other children (exec's
/// `cryo-runtime`) are waited for by pid where they are started, never here.
final class ChildReaper: Sendable {
    private let state = NIOLockedValueBox<[(pid: pid_t, pidfd: Int32)]>([])
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let thread = NIOThreadPool(numberOfThreads: 1)

    init() {
        var p: [Int32] = [0, 0]
        _ = cryo_pipe2(&p, O_CLOEXEC | O_NONBLOCK)
        wakeRead = p[0]
        wakeWrite = p[1]
        thread.start()
        thread.submit { [self] _ in loop() }
    }

    func add(pid: pid_t, pidfd: Int32) {
        guard pidfd >= 0 else { return }
        state.withLockedValue { $0.append((pid, pidfd)) }
        var b: UInt8 = 1
        _ = write(wakeWrite, &b, 1)
    }

    private func loop() {
        while true {
            let children = state.withLockedValue { $0 }
            var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            fds += children.map { pollfd(fd: $0.pidfd, events: Int16(POLLIN), revents: 0) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 { continue }
            if fds[0].revents != 0 {
                var buf = [UInt8](repeating: 0, count: 64)
                while read(wakeRead, &buf, buf.count) > 0 {}
            }
            for (i, c) in children.enumerated() where fds[i + 1].revents != 0 {
                var status: Int32 = 0
                if waitpid(c.pid, &status, WNOHANG) != 0 {
                    close(c.pidfd)
                    state.withLockedValue { $0.removeAll { $0.pidfd == c.pidfd } }
                }
            }
        }
    }
}
