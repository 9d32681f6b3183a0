import CShim
import Glibc

/// What a helper process printed and how it ended.
public struct CapturedRun: Sendable {
    /// Exit code (128+signal when killed).
    public let status: Int32
    public let stdout: [UInt8]
    public let stderr: [UInt8]
    public let timedOut: Bool

    public var stdoutString: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrString: String { String(decoding: stderr, as: UTF8.self) }
}

extension Spawn {
    /// Runs a helper to completion (clone3 + exec through `spawn`): `input` on its stdin,
    /// stdout and stderr captured (read together with poll, so neither pipe can fill and
    /// stall the child). After `timeoutMs` the child is killed and `timedOut` is set.
    /// Safe from any thread: nothing but C runs in the child, and only this child is waited for.
    public static func run(
        path: String, args: [String], env: [String], input: [UInt8] = [],
        timeoutMs: Int32 = 60_000
    ) throws -> CapturedRun {
        var inP: [Int32] = [-1, -1], outP: [Int32] = [-1, -1], errP: [Int32] = [-1, -1]
        defer { for fd in inP + outP + errP where fd >= 0 { close(fd) } }
        try sys(cryo_pipe2(&inP, O_CLOEXEC), "pipe2", path)
        try sys(cryo_pipe2(&outP, O_CLOEXEC), "pipe2", path)
        try sys(cryo_pipe2(&errP, O_CLOEXEC), "pipe2", path)
        let child = try spawn(path: path, args: args, env: env, fds: [inP[0], outP[1], errP[1]])
        defer { if child.pidfd >= 0 { close(child.pidfd) } }
        close(inP[0]); inP[0] = -1
        close(outP[1]); outP[1] = -1
        close(errP[1]); errP[1] = -1

        // stdin: a plugin reads all of it before writing anything, so a blocking write is fine.
        // A child that exits without reading gives EPIPE: SIGPIPE is blocked on this thread for
        // the write (and a pending one consumed), so it cannot kill the caller.
        var set = sigset_t(), old = sigset_t()
        sigemptyset(&set); sigaddset(&set, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &set, &old)
        var off = 0
        while off < input.count {
            let n = input.withUnsafeBytes { p in retryingEINTR { write(inP[1], p.baseAddress! + off, p.count - off) } }
            if n < 0 { break }
            off += n
        }
        close(inP[1]); inP[1] = -1
        // Consume a pending SIGPIPE raised by our write before unblocking.
        var pending = sigset_t()
        sigpending(&pending)
        if sigismember(&pending, SIGPIPE) == 1 {
            var ts = timespec(tv_sec: 0, tv_nsec: 0)
            _ = sigtimedwait(&set, nil, &ts)
        }
        pthread_sigmask(SIG_SETMASK, &old, nil)

        var out: [UInt8] = [], err: [UInt8] = []
        var open = [outP[0], errP[0]]
        var buf = [UInt8](repeating: 0, count: 65536)
        let deadline = Monotonic.now().adding(milliseconds: Int64(timeoutMs))
        var timedOut = false
        while open.contains(where: { $0 >= 0 }) {
            let left = deadline.millisecondsLeft
            if left <= 0 { timedOut = true; break }
            var pfds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let r = poll(&pfds, nfds_t(pfds.count), Int32(min(left, 1000)))
            if r < 0 { if errno == EINTR { continue }; throw SyscallError("poll", path) }
            for (i, p) in pfds.enumerated() where p.fd >= 0 && p.revents != 0 {
                let n = buf.withUnsafeMutableBytes { b in retryingEINTR { read(p.fd, b.baseAddress, b.count) } }
                if n > 0 {
                    if i == 0 { out.append(contentsOf: buf[0..<n]) } else { err.append(contentsOf: buf[0..<n]) }
                } else {
                    open[i] = -1
                }
            }
        }
        if timedOut { _ = cryo_pidfd_send_signal(child.pidfd, SIGKILL) }
        let status = try wait(pid: child.pid)
        return CapturedRun(status: status, stdout: out, stderr: err, timedOut: timedOut)
    }
}
