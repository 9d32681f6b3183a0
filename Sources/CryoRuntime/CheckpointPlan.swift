import CRIURPC
import CryoLinux

/// How CRIU treats the container's cgroups (runc's `--manage-cgroups-mode`).
public enum CgroupsMode: String, Codable, Sendable {
    case soft, full, strict, ignore

    var criu: criu_cg_mode {
        switch self {
        case .soft: return .soft
        case .full: return .full
        case .strict: return .strict
        case .ignore: return .ignore
        }
    }

    public static func parse(_ s: String?) throws -> CgroupsMode {
        guard let s, !s.isEmpty else { return .soft }
        guard let m = CgroupsMode(rawValue: s) else {
            throw CryoFailure(.invalidArgument, "invalid --manage-cgroups-mode \"\(s)\": use soft, full, strict or ignore")
        }
        return m
    }
}

/// Where a dump sends its memory pages instead of the image directory.
public enum PageServer: Codable, Sendable, Equatable {
    /// A page server CRIU connects to (runc's `--page-server ADDRESS:PORT`), from the host's
    /// network namespace.
    case address(host: String, port: Int32)
    /// An already-connected socket to a page server, a descriptor of the checkpointing
    /// process (CRIU's `ps.fd`): a migration's stream to its target, which the caller relays.
    /// It becomes the CRIU worker's fd 4; the caller keeps and closes it. CRIU inside the
    /// container's network namespace can use it (nothing is connected from there).
    case socket(fd: Int32)
    /// Post-copy: CRIU keeps the lazy pages (private anonymous memory) in the frozen tasks
    /// and serves them itself after `post-dump`, listening on 0.0.0.0:`port` of the worker's
    /// network namespace (a lazy dump ignores an address or socket, facts §1.1). With cryo's
    /// lock on that namespace, loopback TCP to and from `port` is let through, so the caller
    /// can connect to it from inside (`NetworkLock.lock(loopbackPort:)`); nothing outside can.
    case lazy(port: Int32)

    /// Parses runc's `ADDRESS:PORT`.
    public static func parse(_ s: String) throws -> PageServer {
        guard let colon = s.lastIndex(of: ":"), let port = Int32(s[s.index(after: colon)...]) else {
            throw CryoFailure(.invalidArgument, "--page-server must be ADDRESS:PORT, got \"\(s)\"")
        }
        return .address(host: String(s[..<colon]), port: port)
    }
}

/// What the checkpointing process adds to a plan: its own code at CRIU's notifications.
public struct CheckpointHooks: Sendable {
    /// Run at CRIU's `post-dump` notification (not for a pre-dump), after the completion
    /// marker: every image is written (and every page sent), the tasks are still frozen and
    /// the network locked. A throw answers CRIU "failed" — it then resumes the tasks, the
    /// marker is removed first and the checkpoint fails with the container running — a return
    /// lets the dump finish (the tasks are killed unless the plan leaves them running). A
    /// migration's commit point.
    public var atPostDump: (@Sendable () throws -> Void)?
    /// Asked when the dump failed: true leaves the container frozen and its network locked
    /// (a migration that cannot learn whether the target took over must not let both run).
    public var keepFrozenAfterFailure: (@Sendable () -> Bool)?
    public init(atPostDump: (@Sendable () throws -> Void)? = nil, keepFrozenAfterFailure: (@Sendable () -> Bool)? = nil) {
        self.atPostDump = atPostDump
        self.keepFrozenAfterFailure = keepFrozenAfterFailure
    }
}

/// Everything a checkpoint decides, built once by its caller (the engine, or cryo-runtime's
/// CLI from runc's flags) and followed by `Runtime.checkpoint`; `CRIURequestBuilder.dump`
/// turns it, with what the runtime finds of the container, into CRIU's request.
public struct CheckpointPlan: Codable, Sendable, Equatable {
    public var criuPath = "criu"
    public var imagePath: String
    /// CRIU's log and stats (default: the image directory).
    public var workPath: String?
    public var network: NetworkHandling
    public var tcpEstablished = false
    public var extUnixSk = false
    public var shellJob = false
    public var fileLocks = false
    public var autoDedup = false
    public var lazyPages = false
    public var cgroupsMode: CgroupsMode = .soft
    /// The container goes on running after the dump (a pre-dump always does).
    public var leaveRunning = false
    /// Memory only, tracked for a later dump with `parentPath` (needs soft-dirty tracking).
    public var preDump = false
    public var parentPath: String?
    public var pageServer: PageServer?
    /// A descriptor of the calling process that gets a zero byte at CRIU's `status-ready`
    /// (runc's `--status-fd`: the lazy-pages server listens).
    public var statusFD: Int32?
    /// A file written into the image directory at CRIU's `post-dump` notification: every
    /// image is written and flushed, and CRIU has not yet let the tasks go (nor killed them).
    /// Its presence proves the images complete to whoever finds them after a crash of cryod,
    /// CRIU or the monitor — only then may a checkpoint that stops the container be kept.
    /// Written atomically but not fsync'd, like the images (which CRIU does not fsync): it
    /// guards against processes dying, not against the machine losing power.
    public var completionMarker: String?

    public init(imagePath: String, network: NetworkHandling) {
        self.imagePath = imagePath
        self.network = network
    }

    /// Whether the dump leaves the tasks running (CRIU's leave_running).
    public var tasksKeepRunning: Bool { leaveRunning || preDump }

    /// The lazy page server's port (`PageServer.lazy`), which cryo's lock lets through on
    /// the namespace's loopback.
    public var lazyPort: Int32? {
        if case .lazy(let port)? = pageServer { return port }
        return nil
    }

    /// cryo locks the network itself, right after freezing: CRIU runs inside the namespace and
    /// sends no network-lock notification.
    public var cryoLocksBeforeDump: Bool { network.locker == .cryo && network.criuInside }
    /// cryo locks the network at CRIU's network-lock notification and unlocks at its
    /// network-unlock (a failed dump, or leave-running).
    public var cryoLocksAtNotification: Bool { network.locker == .cryo && !network.criuInside }
}
