/// Everything a restore decides, built once by its caller — the engine (carried verbatim by
/// the container's monitor in monitor.json) or cryo-runtime's CLI from runc's flags — and
/// followed by `Runtime.restore`; `CRIURequestBuilder.restore` turns it, with what the
/// runtime prepared, into CRIU's request.
public struct RestorePlan: Codable, Sendable, Equatable {
    public var criuPath = "criu"
    public var imagePath: String
    /// CRIU's log (default: `<state dir>/criu-work`, so a failed restore writes nothing
    /// into the images).
    public var workPath: String?
    /// `criuInside` must match the images: true exactly when they hold no network namespace
    /// and the container joins one by path (checked before CRIU starts).
    public var network: NetworkHandling
    public var tcpEstablished = false
    public var extUnixSk = false
    public var shellJob = false
    public var fileLocks = false
    public var autoDedup = false
    public var lazyPages = false
    public var cgroupsMode: CgroupsMode = .soft
    /// With `NetworkLocker.cryo`: the lock stays on the namespace when the tasks resume, for
    /// the caller to remove (`NetworkLock.unlock`) — a migration's target runs its copy cut off
    /// until the source has let its own go. With `.nobody` there is no lock to keep; with
    /// `.criu` it is refused (CRIU unlocks by itself).
    public var keepNetworkLocked = false
    /// The read end of a `ReadyGate`, a descriptor of the restoring process: CRIU is held at
    /// its `post-setup-namespaces` notification (namespaces set up and mounts restored, no
    /// socket restored yet) until the gate opens — cryod attaches the container's network
    /// meanwhile. A gate that fails or stays shut for `networkGateTimeoutMs` aborts the restore.
    public var networkGateFD: Int32?
    public var networkGateTimeoutMs: Int32 = 60_000

    public init(imagePath: String, network: NetworkHandling) {
        self.imagePath = imagePath
        self.network = network
    }

    /// The CRIU notification at which cryo removes its lock, right before the restored tasks
    /// run: `network-unlock` when CRIU runs outside the namespace, `pre-resume` when inside
    /// (CRIU sends no network-unlock then). nil: cryo does not unlock (it holds no lock, or
    /// the plan keeps it).
    public var cryoUnlockNotification: String? {
        guard network.locker == .cryo, !keepNetworkLocked else { return nil }
        return network.criuInside ? "pre-resume" : "network-unlock"
    }
}

/// What the restoring process hands over besides the plan: where the restored container's
/// terminal and pid go.
public struct RestoreIO: Sendable {
    public var pidFile: String?
    /// Receives the restored pty master (runc's console socket).
    public var consoleSocket: String?
    public init(pidFile: String? = nil, consoleSocket: String? = nil) {
        self.pidFile = pidFile
        self.consoleSocket = consoleSocket
    }
}
