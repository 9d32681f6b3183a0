import CryoImages
import CryoLinux
import CryoMigration
import CryoMonitor
import CryoNetwork
import CryoOCI
import CryoRuntime
import FoundationEssentials
import Glibc
import NIOCore
import NIOPosix

public struct EngineOptions: Sendable {
    public var paths: EnginePaths
    /// Directory holding cryo-monitor and cryo-runtime (default: next to cryod).
    public var binDir: String
    /// Checkpoint every running container at shutdown and restore it at the next start.
    public var checkpointOnShutdown = false
    /// Subnet of the default network cryo0 (nil: 198.18.0.0/24).
    public var defaultSubnet: String?
    /// Bridge interface of the default network (nil: cryo0). Two cryods on one host need
    /// different bridges and subnets: each keeps its own address allocations.
    public var defaultBridge: String?
    /// Parent cgroup of the containers' cgroups (`--cgroup-parent`).
    public var cgroupParent = "/cryo"
    /// Where the CNI plugin binaries are (nil: /usr/lib/cni, then /opt/cni/bin).
    public var cniPluginDirs: [String]?
    /// Bytes one image load or import may extract (nil: the free space, less a reserve).
    public var maxImageExtractBytes: Int64?
    /// Opens a connection to another cryod for `migrate` (tcp://HOST:PORT over mutual TLS
    /// with this daemon's certificate, set by cryod). nil: only unix:// targets.
    public var dialPeer: (@Sendable (String) async throws -> any ByteStream)?
    public init(paths: EnginePaths, binDir: String) {
        self.paths = paths
        self.binDir = binDir
    }
}

/// The engine: containers, their monitors, images and checkpoints. An actor: its state
/// is only touched on it; every disk I/O and slow work (files, directories, mounts, spawning,
/// CRIU) runs on `pool` threads (`blocking`) or the `RecordWriter`, never on the actor — its
/// own executor lets a debug build check that (`EngineExecutor`, `OffActorCheck`) — and
/// per-container locks keep two operations on one container from interleaving.
public actor Engine {
    /// The actor's executor (see `EngineExecutor`).
    private nonisolated let executor = EngineExecutor()
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    public nonisolated let options: EngineOptions
    public nonisolated var paths: EnginePaths { options.paths }
    public nonisolated let images: ImageStore
    public nonisolated let group: EventLoopGroup
    let pool: NIOThreadPool
    let reaper = ChildReaper()
    /// Writes the records off the actor, in order (see `RecordWriter`).
    let recordWriter = RecordWriter()
    let runtime: Runtime

    /// One slot per container (record, lock, waiters, teardown, expected exit), by id.
    var slots: [String: ContainerSlot] = [:]
    var nextWaiterToken = 0
    /// Exec instances by exec id, not in the slots: every exec request names only the exec
    /// id (start, inspect, resize), and Docker keeps them apart from the container too.
    /// `removeNow` drops a container's execs with it.
    var execs: [String: ExecSession] = [:]
    /// Migrations arriving here: their page-stream connections, handed to their sessions.
    public nonisolated let migrationStreams = StreamRendezvous()
    /// Networks (`<root>/networks`) and the CNI plugins that attach containers to them.
    public nonisolated let networks: NetworkStore
    /// `docker events`: what the engine emits (volumes: `events.emit("volume", …)`).
    public nonisolated let events = EventBus()
    public nonisolated let cni: CNIRunner
    var nextTeardownToken = 0
    var nextRestartToken = 0
    var nextHealthToken = 0
    /// Volumes a create in flight is about to mount (before its record exists), and volumes
    /// being removed: a removal and a create of the same volume never interleave.
    var volumeClaims: [String: Int] = [:]
    var volumesBeingRemoved: Set<String> = []
    /// Volumes leaving with a container being migrated (volume → container name): removed
    /// here once the target commits, so no new container may mount them meanwhile.
    var volumesMovingOut: [String: String] = [:]
    /// Set while `recover` runs: exits found then are not restarted by policy at once; the
    /// restart-policy pass after recovery decides (`startByRestartPolicy`).
    var recovering = false
    /// Set by `shutdown`: no restart by policy begins any more.
    var shuttingDown = false

    public init(options: EngineOptions, group: EventLoopGroup) throws {
        // 103, not the kernel's 107: SwiftNIO's SocketAddress refuses longer paths, and cryod
        // reaches the monitors through it (a longer path made every container look exited
        // two seconds after its start: bench/migrate-bench.py found it).
        guard options.paths.longestSocketPath <= 103 else {
            throw CryoFailure(.invalidArgument, "--exec-root \(options.paths.execRoot) is too long: monitor sockets under it would need \(options.paths.longestSocketPath) bytes, and cryod can reach unix sockets of at most 103")
        }
        self.options = options
        // Root only, like dockerd's state: containers' upper dirs and image layers hold
        // files a container or an image made setuid-root or device nodes, and overlay
        // rootfs mounts cannot be nosuid/nodev (the container needs them), so no other
        // host user may reach them by path. Existing directories are tightened too.
        for d in [options.paths.root, options.paths.containers, options.paths.execRoot, options.paths.runtimeRoot, options.paths.monitorSockets] {
            try FS.mkdirAll(d, mode: 0o700)
            try sys(chmod(d, 0o700), "chmod 0700", d)
        }
        self.images = try ImageStore(root: options.paths.images, maxExtractedBytes: options.maxImageExtractBytes)
        self.group = group
        self.pool = NIOThreadPool(numberOfThreads: 16)
        self.pool.start()
        self.runtime = Runtime(root: options.paths.runtimeRoot)
        self.networks = try NetworkStore(root: options.paths.root)
        if let dirs = options.cniPluginDirs {
            self.cni = try CNIRunner(root: options.paths.root, pluginDirs: dirs)
        } else {
            self.cni = try CNIRunner(root: options.paths.root)
        }
        do {
            try networks.ensureDefault(subnet: options.defaultSubnet, bridge: options.defaultBridge)
        } catch {
            throw CryoFailure(.internal, "the default network \(NetworkDefaults.defaultName)", cause: error)
        }
    }

    var monitorBinary: String { options.binDir + "/cryo-monitor" }
    var runtimeBinary: String { options.binDir + "/cryo-runtime" }
    /// The static PID 1 that `--init` binds into a container.
    var initBinary: String { options.binDir + "/cryo-init" }

    /// Runs blocking work on a pool thread, after every record change queued before it is
    /// on disk (the order the engine's steps and crash recovery rely on).
    public nonisolated func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        await recordWriter.flush()
        return try await pool.runIfActive(body)
    }

    /// A fault point reached by an actor method: hit on the pool (a `hold` waits there, not
    /// on the actor), after the records changed before it are on disk, as for the points hit
    /// in `blocking` work; the caller goes on once it is passed.
    nonisolated func faultPoint(_ point: String, criu: pid_t? = nil) async {
        _ = try? await blocking { FaultPoint.hit(point, criu: criu) }
    }

    // MARK: lookup and persistence

    /// By full id, name (with or without "/"), or unique id prefix — Docker's order.
    public func resolve(_ ref: String) throws -> StoredContainer {
        if let c = slots[ref]?.record { return c }
        let name = ref.hasPrefix("/") ? String(ref.dropFirst()) : ref
        if let c = allRecords.first(where: { $0.name == name }) { return c }
        let matches = allRecords.filter { $0.id.hasPrefix(ref) }
        if matches.count == 1, !ref.isEmpty { return matches[0] }
        if matches.count > 1 { throw EngineError.bad("multiple containers found with provided prefix: \(ref)") }
        throw EngineError.noSuchContainer(ref)
    }

    public func container(_ ref: String) throws -> StoredContainer { try resolve(ref) }

    /// Every container's record.
    var allRecords: [StoredContainer] { slots.values.map(\.record) }

    /// Container `id`'s record, if it exists.
    func record(_ id: String) -> StoredContainer? { slots[id]?.record }

    public func list(all: Bool) -> [StoredContainer] {
        allRecords.filter { all || $0.isRunning }.sorted { $0.created > $1.created }
    }

    /// Stores a new or changed record and returns once it is on disk (a new container's slot
    /// is made here). Written off the actor, in order with every other record change.
    func save(_ c: StoredContainer, durable: Bool = false) async throws {
        if slots[c.id] == nil { slots[c.id] = ContainerSlot(record: c) } else { slots[c.id]!.record = c }
        try await recordWriter.write(c, to: paths.record(c.id), durable: durable)
    }

    /// Changes a container's record; the write is queued (see `RecordWriter`).
    func update(_ id: String, _ change: (inout StoredContainer) -> Void) {
        guard var c = slots[id]?.record else { return }
        change(&c)
        slots[id]!.record = c
        recordWriter.enqueue(c, to: paths.record(id))
    }

    /// Records that `op` is about to begin, durably (temp file, fsync, rename, fsync of the
    /// directory) — only then may it freeze, dump or restore anything. Throws when it cannot
    /// be recorded, before anything is touched. (In memory first: a record change made
    /// while the write is under way carries the operation too.)
    func beginOperation(_ id: String, _ op: PendingOperation) async throws {
        guard var c = slots[id]?.record else { throw EngineError.noSuchContainer(id) }
        c.operation = op
        slots[id]!.record = c
        do {
            try await recordWriter.write(c, to: paths.record(id), durable: true)
        } catch {
            update(id) { $0.operation = nil }
            throw EngineError.internalError("recording the \(op.kind.rawValue) of \(c.name) before it starts: \(error)")
        }
    }

    /// The operation is over (done or undone). Not fsync'd: a record that still shows it after
    /// a power loss is resolved again at start, to the same outcome.
    func endOperation(_ id: String) {
        update(id) { $0.operation = nil }
    }

    /// Runs `body` on the actor holding container `id`'s lock (FIFO, see `ContainerLock`).
    /// Every operation that changes a container takes it once, at its entry point; what it
    /// calls runs the `…Locked` variants, never an entry point that would take it again.
    func withLock<T: Sendable>(_ id: String, _ body: () async throws -> T) async throws -> T {
        guard let lock = slots[id]?.lock else { throw EngineError.noSuchContainer(id) }
        try await lock.lock()
        defer { lock.unlock() }
        return try await body()
    }

    // MARK: recovery

    /// Loads every container record and reconciles it with what is really running:
    /// live monitors are watched again, exits that happened meanwhile are recorded,
    /// containers lost to a reboot are restored from their shutdown checkpoint.
    public func recover() async {
        let p = paths
        recovering = true
        defer { recovering = false }
        // A pull, load or import the last daemon did not finish left only staging files.
        let store = images
        do { try await blocking { try store.removeStaging() } } catch {
            EngineLog.logger.warning("removing the image store's unfinished staging failed: \(error)")
        }
        let stored = (try? await blocking { () -> [StoredContainer] in
            ((try? FS.listDirectory(p.containers)) ?? []).compactMap { id in
                guard let bytes = try? FS.readBytes(p.record(id)) else { return nil }
                return try? JSONDecoder().decode(StoredContainer.self, from: Data(bytes))
            }
        }) ?? []
        for c in stored { slots[c.id] = ContainerSlot(record: c) }
        for c in allRecords where c.status == .removing {
            try? await removeNow(c.id)
        }
        // Checkpoints and restores a killed cryod left in progress, before anything else.
        for c in allRecords where c.operation != nil {
            await resolveInterrupted(c.id)
        }
        await removeStrayIncompleteCheckpoints()
        for c in allRecords {
            if c.isRunning || c.status == .restarting {
                if Processes.isAlive(pid: c.monitorPid, startTime: c.monitorStartTime) {
                    await syncPausedState(c.id)
                    watch(c.id)
                    startHealthMonitor(c.id)
                } else {
                    await monitorGone(c.id)
                }
            } else {
                await stopUnrecordedStart(c.id)
            }
        }
        for c in allRecords where c.restoreOnStart != nil && !c.isRunning {
            let name = c.restoreOnStart!
            do {
                try await start(c.id, checkpoint: name, checkpointDir: nil)
                let used = paths.checkpoints(c.id) + "/" + name
                _ = try? await blocking { try FS.removeAll(used) }
                update(c.id) { $0.restoreOnStart = nil }
            } catch {
                update(c.id) { $0.error = "restore at start from checkpoint \(name) failed: \(error)" }
            }
        }
    }

    /// A running container's record says what its cgroup is: paused (frozen) or running.
    func syncPausedState(_ id: String) async {
        guard slots[id]?.record.isRunning == true else { return }
        let rt = runtime
        guard let st = try? await blocking({ try rt.state(id: id) }) else { return }
        // Read again after the await: recovery runs before any request is served, but the
        // record is the actor's and may have changed meanwhile.
        guard let c = slots[id]?.record, c.isRunning else { return }
        let status: ContainerStatus = st.status == "paused" ? .paused : .running
        if status != c.status { update(id) { $0.status = status } }
    }

    /// The monitor is gone: take its exit record, or note that the container was lost.
    func monitorGone(_ id: String, reported: ExitRecord? = nil) async {
        let expected = slots[id]?.expectedExit
        slots[id]?.expectedExit = nil
        let wasCheckpoint = expected != nil
        // Its restore brings it back, not its restart policy.
        if wasCheckpoint { update(id) { $0.stopCause = .checkpoint } }
        // Whatever outlived the monitor (it was killed) goes: the record is about to say
        // exited. (A checkpoint that stops the container cleans up after itself; a monitor
        // whose socket merely failed us is alive, and so is its container.)
        // (A monitor that ended normally removed the runtime state first: no wait then.)
        let runtimeDir = runtime.store.dir(id)
        if !wasCheckpoint, (try? await blocking { FS.exists(runtimeDir) }) == true, let c = slots[id]?.record, await monitorHasExited(c) {
            await discardRuntimeLeftovers(id)
        }
        let exitPath = paths.exitRecord(id)
        let exitRec: ExitRecord? = (try? await blocking { () -> ExitRecord? in
            guard let bytes = try? FS.readBytes(exitPath) else { return nil }
            return try? JSONDecoder().decode(ExitRecord.self, from: Data(bytes))
        }) ?? reported
        if let why = exitRec?.recordError { note(id, why) }
        update(id) { c in
            guard c.isRunning || c.status == .restarting else { return }
            c.status = .exited
            c.pid = 0
            c.heldByMigration = nil
            if wasCheckpoint {
                c.exitCode = 0
                c.finishedAt = exitRec?.finishedAt ?? rfc3339Now()
            } else if let e = exitRec {
                c.exitCode = e.exitCode
                c.finishedAt = e.finishedAt
                // exit.json could not be written: a cryod restarted now would not know the code.
                if let why = e.recordError { c.error = why }
            } else {
                c.exitCode = 255
                c.finishedAt = rfc3339Now()
                c.error = "the container's monitor is gone without an exit record (host reboot or monitor killed)"
            }
            c.monitorPid = 0
        }
        healthRunEnded(id)
        // An exit of its own (not a checkpoint, stop, kill or removal): its restart policy,
        // decided at once so the record goes from running to restarting (the restart waits
        // for the teardown below).
        if let c = slots[id]?.record { emitContainer("die", c, ["exitCode": String(c.exitCode)]) }
        if !wasCheckpoint { scheduleRestartByPolicy(id) }
        // The network goes with the process (Docker tears it down at stop too): the address
        // and published ports are released before anyone waiting for the exit goes on.
        await beginNetworkTeardown(id).value
        let code = slots[id]?.record.exitCode ?? 255
        resumeExitWaiters(id, code)
        if let c = slots[id]?.record, c.hostConfig.AutoRemove == true, !wasCheckpoint {
            // As dockerd, `--rm` takes the container's anonymous volumes with it.
            Task { try? await self.remove(id, force: true, removeVolumes: true) }
        }
    }

    /// Whether the monitor's process is gone, given a moment: a killed process closes its
    /// socket before it is done exiting.
    func monitorHasExited(_ c: StoredContainer) async -> Bool {
        for _ in 0..<100 {
            if !Processes.isAlive(pid: c.monitorPid, startTime: c.monitorStartTime) { return true }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return false
    }

    /// Follows a running container's monitor until it exits.
    func watch(_ id: String) {
        let path = paths.monitorSocket(id)
        let group = self.group
        Task.detached {
            let reported = await MonitorLink.waitForExit(path: path, group: group)
            await self.monitorGone(id, reported: reported)
        }
    }
}
