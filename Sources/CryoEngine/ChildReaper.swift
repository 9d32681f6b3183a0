import CShim
import CryoLinux
import Glibc
import NIOConcurrencyHelpers
import NIOPosix

/// Reaps cryod's long-lived children on one thread that polls their pidfds: the monitors
/// (cryod's children until cryod exits; then re-parented, and cryod's restart never touches
/// them; nobody waits for them) and exec sessions' `cryo-runtime exec`, whose exit code
/// `wait` delivers. No child's wait parks a thread of its own: 22 attached exec sessions
/// used to hold 22 pool threads in `waitpid` and `read` and starve every other operation.
final class ChildReaper: Sendable {
    private struct Child {
        var pid: pid_t
        var pidfd: Int32
        var waiter: CheckedContinuation<Int32, Never>?
    }
    private let state = NIOLockedValueBox<[Child]>([])
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

    /// Reaps `pid` when it exits (its pidfd is closed then); nobody learns its code.
    func add(pid: pid_t, pidfd: Int32) {
        guard pidfd >= 0 else { return }
        state.withLockedValue { $0.append(Child(pid: pid, pidfd: pidfd, waiter: nil)) }
        wake()
    }

    /// Waits for `pid` (a child of cryod) to exit and returns its exit code (128 + signal
    /// when killed). Takes ownership of `pidfd`. Without a pidfd it falls back to a
    /// blocking `waitpid` on a pool thread.
    func wait(pid: pid_t, pidfd: Int32) async -> Int32 {
        guard pidfd >= 0 else {
            return await withCheckedContinuation { c in
                DetachedThread { c.resume(returning: (try? Spawn.wait(pid: pid)) ?? 255) }.start()
            }
        }
        return await withCheckedContinuation { c in
            state.withLockedValue { $0.append(Child(pid: pid, pidfd: pidfd, waiter: c)) }
            wake()
        }
    }

    private func wake() {
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
                let r = waitpid(c.pid, &status, WNOHANG)
                if r != 0 {
                    close(c.pidfd)
                    state.withLockedValue { $0.removeAll { $0.pidfd == c.pidfd } }
                    c.waiter?.resume(returning: r > 0 ? Spawn.exitCode(fromWaitStatus: status) : 255)
                }
            }
        }
    }
}
