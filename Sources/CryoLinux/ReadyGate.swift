import CShim
import Glibc

/// A one-shot "go / no go" signal between processes over a pipe: one side opens it by
/// writing one byte, or fails it by closing its end without writing (which is also what
/// happens when that process dies). The other side blocks in `wait` until one of the two,
/// or a timeout.
///
/// cryod uses it to let a restore run ahead of the container's network attach: the
/// runtime holds CRIU at a notification until cryod says the address is in place.
public enum ReadyGate {
    static let go: UInt8 = 0x31   // "1"

    /// A new gate: (read end, write end), both close-on-exec.
    public static func make() throws -> (read: Int32, write: Int32) {
        var p: [Int32] = [0, 0]
        try sys(cryo_pipe2(&p, O_CLOEXEC), "pipe2", "ready gate")
        return (p[0], p[1])
    }

    /// Opens the gate and closes `fd` (the write end).
    public static func open(_ fd: Int32) {
        var b = go
        while Glibc.write(fd, &b, 1) < 0 && errno == EINTR {}
        close(fd)
    }

    /// Fails the gate: closes `fd` (the write end) without opening it.
    public static func fail(_ fd: Int32) {
        close(fd)
    }

    public enum Outcome: Sendable, Equatable { case opened, failed, timedOut }

    /// Waits on the read end `fd` for at most `timeoutMs`.
    public static func wait(_ fd: Int32, timeoutMs: Int32) throws -> Outcome {
        let deadline = Monotonic.now().adding(milliseconds: Int64(timeoutMs))
        while true {
            let left = Int32(deadline.millisecondsLeft)
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&pfd, 1, left)
            if r < 0 {
                if errno == EINTR { continue }
                throw SyscallError("poll", "ready gate fd \(fd)", errno: errno)
            }
            if r == 0 { return .timedOut }
            var b: UInt8 = 0
            let n = read(fd, &b, 1)
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw SyscallError("read", "ready gate fd \(fd)", errno: errno)
            }
            return n == 1 && b == go ? .opened : .failed
        }
    }
}
