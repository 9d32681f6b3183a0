import CryoCRIU
import CryoHTTP
import CryoLinux
import Glibc
import NIOPosix

/// CRIU's page-server stream carried over a connection between two cryods. On A, CRIU's
/// dump gets one end of a socket pair as its page-server socket (`ps.fd`) and cryod relays
/// the other end to B; on B, `criu page-server --ps-socket` gets one end of another pair
/// and writes the pages into the image directory. CRIU never dials anything itself, and its
/// pages travel inside the connection cryod authenticated.
public enum PageStream {
    /// A socket pair: `criu` for CRIU (inheritable by the worker: no close-on-exec needed, the
    /// spawn maps it), `relay` as a stream for cryod.
    public static func pair() async throws -> (criu: Int32, relay: RawStream) {
        let sv = try widenedPair()
        do {
            return (sv[0], try await RawStream.adopt(socket: sv[1]))
        } catch {
            close(sv[0])
            throw error
        }
    }

    /// Copies `a` → `b` and `b` → `a` until both ends have closed, half-closing each side
    /// as its source ends. Returns the bytes each way. A failure on either side closes both.
    /// `moved` is called after each buffer passes (a `SilenceWatch` listens).
    public static func relay(_ a: any ByteStream, _ b: any ByteStream,
                             moved: (@Sendable () -> Void)? = nil) async throws -> (aToB: UInt64, bToA: UInt64) {
        try await withThrowingTaskGroup(of: (Bool, UInt64).self) { group in
            group.addTask { (true, try await copy(a, b, moved)) }
            group.addTask { (false, try await copy(b, a, moved)) }
            var result: (UInt64, UInt64) = (0, 0)
            do {
                for try await (forward, n) in group {
                    if forward { result.0 = n } else { result.1 = n }
                }
            } catch {
                await a.close()
                await b.close()
                throw error
            }
            return result
        }
    }

    /// A unix stream socket pair (close-on-exec) with `widen`ed buffers: every page stream's.
    static func widenedPair() throws -> [Int32] {
        var sv: [Int32] = [-1, -1]
        try sys(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv), "socketpair")
        widen(sv)
        return sv
    }

    /// 8 MiB socket buffers on both ends of a page-stream socket pair (root may exceed
    /// wmem_max): a write of the relay completes into the buffer while the next read is
    /// made, instead of waiting for the other side to drain ~200 KiB at a time.
    static func widen(_ fds: [Int32]) {
        var size: Int32 = 8 << 20
        for fd in fds {
            _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size))
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    static func copy(_ from: any ByteStream, _ to: any ByteStream, _ moved: (@Sendable () -> Void)?) async throws -> UInt64 {
        var n: UInt64 = 0
        while let buffer = try await from.readBuffer() {
            n += UInt64(buffer.readableBytes)
            try await to.writeBuffer(buffer)
            moved?()
        }
        await to.closeWrite()
        return n
    }
}

/// B's `criu page-server`, receiving A's pages into an image directory.
public struct PageServerProcess: Sendable {
    /// cryod's end of the page stream, to relay into; nil when the server was given the
    /// source's own connection (`LocalPageSocket`).
    public let stream: RawStream?
    let process: SpawnedProcess
    let logPath: String
    public var pid: pid_t { process.pid }

    /// Starts it on `socket` (taken over: closed here once the server has it), or on a fresh
    /// socket pair whose other end is `stream`.
    public static func start(criuPath: String, imagesDir: String, socket given: Int32? = nil) async throws -> PageServerProcess {
        let sv = try given.map { [-1, $0] } ?? PageStream.widenedPair()
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer {
            if devnull >= 0 { close(devnull) }
            close(sv[1])
        }
        let args = [criuPath, "page-server", "--images-dir", imagesDir, "--ps-socket", "3",
                    "--log-file", "page-server.log", "-v4"]
        let p: SpawnedProcess
        do {
            p = try Spawn.spawn(path: criuPath, args: args, env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                                fds: [devnull, devnull, devnull, sv[1]])
        } catch {
            if sv[0] >= 0 { close(sv[0]) }
            throw CryoFailure(.internal, "cannot start criu page-server", cause: error)
        }
        let stream = sv[0] >= 0 ? try await RawStream.adopt(socket: sv[0]) : nil
        return PageServerProcess(stream: stream, process: p, logPath: imagesDir + "/page-server.log")
    }

    /// Waits for the page server to end: 0 means every page A sent is written.
    public func finish() async throws {
        let code = try await exitCode(of: process)
        guard code == 0 else {
            let log = CRIULog.errorLines((try? FS.readString(logPath)) ?? "", limit: 6).joined(separator: "\n")
            throw CryoFailure(.internal, "criu page-server exited with status \(code) (log \(logPath)):\n\(log)")
        }
    }

    public func cancel() async {
        kill(process.pid, SIGKILL)
        await stream?.close()
        try? await finish()
    }
}

/// Waits (on a pool thread: a short-lived helper) for `p` to end; its exit code.
func exitCode(of p: SpawnedProcess) async throws -> Int32 {
    try await NIOThreadPool.singleton.runIfActive { () -> Int32 in
        defer { if p.pidfd >= 0 { close(p.pidfd) } }
        return try Spawn.wait(pid: p.pid)
    }
}
