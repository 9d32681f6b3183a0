import CryoLinux

/// Why a container's monitor is about to go away when the engine itself made it go: its
/// exit is then not a crash and not the end of an `AutoRemove` container.
enum ExpectedExit: Sendable {
    /// A checkpoint that stops the container (or the one a killed cryod left, settled at
    /// recovery): the record says exited 0.
    case checkpoint
    /// A migration's source after its dump: the target runs the container now.
    case migration
}

/// Everything the engine keeps about one container, in one place: its record, the lock its
/// changes take, and who waits for what. One slot per container id, created with the record
/// and gone with it (its waiters resumed first).
struct ContainerSlot {
    /// The record, as saved in `<root>/containers/<id>/container.json`.
    var record: StoredContainer
    /// Held by every operation that changes the container (see `Engine.withLock`).
    let lock = ContainerLock()
    /// A `stop` (or a forced removal) has signalled the container and waits for its exit,
    /// holding the lock: `kill` goes straight through then, as in Docker, instead of waiting
    /// out the stop's grace period.
    var stopping = false
    /// Waiters for the next exit, each with a token so a timeout can take its own one out
    /// (a continuation must be resumed exactly once).
    var exitWaiters: [(token: Int, continuation: CheckedContinuation<Int32?, Never>)] = []
    /// `docker wait --condition removed`.
    var removeWaiters: [CheckedContinuation<Void, Never>] = []
    /// Attach requests that arrived before the container's monitor existed.
    var pendingAttach: [CheckedContinuation<Void, Never>] = []
    /// Early attachers let go at start that have not connected yet.
    var attachedBeforeStart = 0
    /// Set while the engine itself ends the container's monitor (replaces the old
    /// `checkpointExits` set).
    var expectedExit: ExpectedExit?
    /// The network teardown in progress (detach, namespace removal); a start or removal of
    /// the container waits for it.
    var teardown: (token: Int, task: Task<Void, Never>)?

    /// A restart by policy waiting out its back-off (cancelled by stop, kill, removal, a
    /// manual start or `update --restart no`).
    var pendingRestart: (token: Int, task: Task<Void, Never>)?
    /// The restart policy's back-off (in memory: a restarted cryod begins at 100 ms again).
    var backoff = RestartPolicyDecision.Backoff()
    /// The health monitor of the current run (see `Engine+Health`), with a token so a
    /// monitor that was replaced never writes its results.
    var health: (token: Int, task: Task<Void, Never>)?
    /// Pauses so far: a probe that spanned one ran frozen, and says nothing of its health.
    var pauses = 0
    /// When the current run began (for the back-off's reset after 10 s of running).
    var runningSince: Monotonic?

    init(record: StoredContainer) {
        self.record = record
    }
}
