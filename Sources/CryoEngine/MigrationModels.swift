/// `cryo migrate`'s request, its progress lines and its final report.
public struct MigrationRequest: Sendable {
    /// The other cryod: tcp://HOST:PORT (mutual TLS with this daemon's certificate) or
    /// unix:///PATH (a cryod on this machine).
    public var target: String
    public var postCopy = false
    /// Dump and restore established TCP connections (also by the container's label).
    public var tcpEstablished = false
    /// Seconds the target may stay silent while the container is frozen here before the move
    /// is abandoned (and the container resumes here): see `SilenceWatch`.
    public var silenceLimit: Double = 30
    public init(target: String) { self.target = target }
}

/// One line of the progress stream (`POST /containers/{id}/migrate` sends them as JSON
/// lines, as `/images/create` does): a phase begins or ends, bytes moved, or the outcome.
public struct MigrationEvent: Codable, Sendable {
    public var phase: String
    public var status: String
    public var bytes: UInt64?
    public var report: MigrationReport?
    public var error: String?
    public init(phase: String, status: String, bytes: UInt64? = nil, report: MigrationReport? = nil, error: String? = nil) {
        self.phase = phase
        self.status = status
        self.bytes = bytes
        self.report = report
        self.error = error
    }
}

public struct MigrationReport: Codable, Sendable {
    public struct Phase: Codable, Sendable {
        public var name: String
        public var ms: Double
    }
    public struct Bytes: Codable, Sendable {
        /// Memory pages (CRIU's page-server stream).
        public var memory: UInt64 = 0
        /// CRIU's other images.
        public var images: UInt64 = 0
        /// The writable layer's changes.
        public var rootfs: UInt64 = 0
        /// Image layers the target lacked.
        public var layers: UInt64 = 0
        public var log: UInt64 = 0
        /// The container's /dev/shm.
        public var shm: UInt64 = 0
        /// The contents of the container's volumes.
        public var volumes: UInt64 = 0
    }
    public var container: String
    public var id: String
    public var target: String
    public var session: String
    public var mode: String
    /// From the freeze on the source to the copy running (unlocked) on the target.
    public var downtimeMs: Double
    public var totalMs: Double
    public var phases: [Phase]
    public var bytes: Bytes
    public var layersSent: Int
    /// Post-copy: from the copy running on the target to its last page there.
    public var pagesCompleteMs: Double?
    /// How CRIU's pages went: "relayed" (inside a connection cryod relays, TLS between hosts)
    /// or "local socket" (a target on this machine: B's own socket, no relay).
    public var pageStream: String?

    static func pageStream(local: Bool) -> String { local ? "local socket" : "relayed" }
}

/// The source's copy of a container that a migration could not let go: its outcome is unknown
/// (the target's answer to the commit was lost), or a post-copy target lost its copy. The copy
/// here stays frozen (paused), its network locked and, on a shared segment, its link down, so
/// that it can never run beside the target's; an operator decides: `unpause` unlocks, raises
/// the link, resumes and announces it; `rm -f` discards it.
public struct MigrationHold: Codable, Sendable, Equatable {
    /// The target (tcp://… or unix://…) and the migration's session.
    public var target: String
    public var session: String
    public init(target: String, session: String) {
        self.target = target
        self.session = session
    }
}
