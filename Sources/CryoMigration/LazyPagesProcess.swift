import CryoCRIU
import CryoHTTP
import CryoLinux
import Glibc
import NIOPosix

/// B's `criu lazy-pages` for a post-copy migration: it reads the received images, takes the
/// restored tasks' userfaultfds from the restore (over `lazy-pages.socket` in the shared work
/// directory) and pulls the missing pages from A's lazy page server — through a socket pair
/// whose other end cryod relays into the migration's page stream (`--ps-socket`), so it never
/// dials anything itself. Its exit status is the authority on whether every page arrived:
/// when it ends, the kernel lets faults on pages it never fetched be served as zeros, so a
/// non-zero status means the restored copy must be killed (facts §1.3).
///
/// It runs under a watchdog (`cryo-monitor lazy-pages-watchdog`, in a session of its own) that
/// kills the container itself when criu fails, so that a dead or restarting cryod never leaves
/// a copy running on zero-filled memory; the watchdog exits with criu's status.
public struct LazyPagesProcess: Sendable {
    /// Who kills the restored container if criu lazy-pages fails while cryod is away.
    public struct Watchdog: Sendable {
        /// cryo-monitor.
        public var binary: String
        public var runtimeRoot: String
        public var containerID: String
        public init(binary: String, runtimeRoot: String, containerID: String) {
            self.binary = binary
            self.runtimeRoot = runtimeRoot
            self.containerID = containerID
        }
    }

    /// cryod's end of the page stream, to relay into; nil when the daemon was given the
    /// source's own connection (`LocalPageSocket`).
    public let stream: RawStream?
    /// criu lazy-pages itself (the watchdog's child), for fault tests; 0 if it already ended.
    public let pid: pid_t
    /// The watchdog (cryod's child).
    let process: SpawnedProcess
    let logPath: String

    /// Starts it on `socket` (taken over: closed here once the daemon has it), or on a fresh
    /// socket pair whose other end is `stream`, and waits until it listens for the restore
    /// (its status-ready byte).
    public static func start(criuPath: String, imagesDir: String, workDir: String, watchdog: Watchdog,
                             socket given: Int32? = nil) async throws -> LazyPagesProcess {
        do {
            try FS.mkdirAll(workDir, mode: 0o700)
        } catch {
            if let given { close(given) }
            throw error
        }
        unlink(workDir + "/lazy-pages.socket")
        let sv = try given.map { [-1, $0] } ?? PageStream.widenedPair()
        var status: [Int32] = [-1, -1]
        // (A socket pair serves as the status pipe: CRIU only writes its byte and closes.)
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &status) == 0 else {
            let e = errno
            close(sv[0]); close(sv[1])
            throw CryoFailure(.internal, "socketpair for criu lazy-pages' status: \(String(cString: strerror(e)))")
        }
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        let criu = [criuPath, "lazy-pages", "--page-server", "--ps-socket", "3", "--status-fd", "4",
                    "--images-dir", imagesDir, "--work-dir", workDir, "--log-file", "lazy-pages.log", "-v2"]
        let p: SpawnedProcess
        do {
            // Its own session: nothing aimed at cryod's process group reaches it.
            p = try Spawn.spawn(path: watchdog.binary,
                                args: ["cryo-monitor", "lazy-pages-watchdog", watchdog.runtimeRoot, watchdog.containerID, workDir, "--"] + criu,
                                env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                                fds: [devnull, devnull, devnull, sv[1], status[1]], setsid: true)
        } catch {
            for fd in [devnull, sv[0], sv[1], status[0], status[1]] where fd >= 0 { close(fd) }
            throw CryoFailure(.internal, "cannot start criu lazy-pages: \(error)")
        }
        for fd in [devnull, sv[1], status[1]] where fd >= 0 { close(fd) }
        var lazy = LazyPagesProcess(stream: sv[0] >= 0 ? try await RawStream.adopt(socket: sv[0]) : nil, pid: 0, process: p,
                                    logPath: workDir + "/lazy-pages.log")
        // One byte when it listens; EOF if it died first.
        let readFD = status[0]
        let ready = try await NIOThreadPool.singleton.runIfActive { () -> Bool in
            defer { close(readFD) }
            var b: UInt8 = 1
            while true {
                let n = read(readFD, &b, 1)
                if n < 0 && errno == EINTR { continue }
                return n == 1
            }
        }
        guard ready else {
            await lazy.cancel()
            throw CryoFailure(.internal, "criu lazy-pages ended before it was ready (log \(lazy.logPath)):\n\(lazy.errors())")
        }
        lazy = LazyPagesProcess(stream: lazy.stream, pid: Processes.descendants(of: p.pid).first ?? 0, process: p, logPath: lazy.logPath)
        return lazy
    }

    /// The error lines of its log.
    public func errors() -> String {
        CRIULog.errorLines((try? FS.readString(logPath)) ?? "", limit: 6).joined(separator: "\n")
    }

    /// Waits for it to end; its exit status (0: every page arrived).
    public func wait() async throws -> Int32 {
        try await exitCode(of: process)
    }

    /// Ends it without the watchdog's verdict (criu dies with it): the caller disposes of the copy.
    public func cancel() async {
        kill(process.pid, SIGKILL)
        await stream?.close()
        _ = try? await wait()
    }
}

/// A's side of the lazy page stream: a connection to CRIU's lazy page server, which listens
/// on `port` inside the container's network namespace (the dump worker's), made from a
/// thread that enters that namespace (the socket stays there). Blocking: call it on a pool thread.
public enum LazyPageSource {
    public static func connect(netnsPath: String, port: UInt16) throws -> Int32 {
        try NetworkNamespace.withThread(in: netnsPath) { () throws -> Int32 in
            let fd = try sys(socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0), "socket")
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = port.bigEndian
            addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if rc != 0 {
                let e = errno
                close(fd)
                throw CryoFailure(.unavailable, "connecting to CRIU's lazy page server at 127.0.0.1:\(port) in \(netnsPath): \(String(cString: strerror(e)))")
            }
            PageStream.widen([fd])
            return fd
        }
    }

}
