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
/// is only touched on it; slow work (mounts, spawning, CRIU) runs on `pool` threads, and
/// per-container locks keep two operations on one container from interleaving.
public actor Engine {
    public nonisolated let options: EngineOptions
    public nonisolated var paths: EnginePaths { options.paths }
    public nonisolated let images: ImageStore
    public nonisolated let group: EventLoopGroup
    let pool: NIOThreadPool
    let reaper = ChildReaper()
    let runtime: Runtime

    var containers: [String: StoredContainer] = [:]
    var locked: Set<String> = []
    var lockWaiters: [String: [CheckedContinuation<Void, Never>]] = [:]
    /// Waiters for a container's next exit, each with a token so a timeout can take
    /// its own waiter out (a continuation must be resumed exactly once).
    var exitWaiters: [String: [(token: Int, continuation: CheckedContinuation<Int32?, Never>)]] = [:]
    var nextWaiterToken = 0
    var removeWaiters: [String: [CheckedContinuation<Void, Never>]] = [:]
    /// Attach requests that arrived before their container's monitor existed.
    var pendingAttach: [String: [CheckedContinuation<Void, Never>]] = [:]
    var attachedBeforeStart: [String: Int] = [:]
    /// Containers being checkpointed with exit: their monitor's exit is not a crash.
    var checkpointExits: Set<String> = []
    var execs: [String: ExecSession] = [:]
    /// Migrations arriving here: their page-stream connections, handed to their sessions.
    public nonisolated let migrationStreams = StreamRendezvous()
    /// Networks (`<root>/networks`) and the CNI plugins that attach containers to them.
    public nonisolated let networks: NetworkStore
    public nonisolated let cni: CNIRunner
    /// Network teardowns in progress (detach, namespace removal); a start or removal of the
    /// container waits for its container's.
    var teardowns: [String: (token: Int, task: Task<Void, Never>)] = [:]
    var nextTeardownToken = 0

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

    /// Runs blocking work on a pool thread.
    public nonisolated func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive(body)
    }

    // MARK: lookup and persistence

    /// By full id, name (with or without "/"), or unique id prefix — Docker's order.
    public func resolve(_ ref: String) throws -> StoredContainer {
        if let c = containers[ref] { return c }
        let name = ref.hasPrefix("/") ? String(ref.dropFirst()) : ref
        if let c = containers.values.first(where: { $0.name == name }) { return c }
        let matches = containers.values.filter { $0.id.hasPrefix(ref) }
        if matches.count == 1, !ref.isEmpty { return matches[0] }
        if matches.count > 1 { throw EngineError.bad("multiple containers found with provided prefix: \(ref)") }
        throw EngineError.noSuchContainer(ref)
    }

    public func container(_ ref: String) throws -> StoredContainer { try resolve(ref) }

    public func list(all: Bool) -> [StoredContainer] {
        containers.values.filter { all || $0.isRunning }.sorted { $0.created > $1.created }
    }

    func save(_ c: StoredContainer) throws {
        containers[c.id] = c
        let data = try JSONEncoder().encode(c)
        // Atomic (a cryod killed at any moment finds the old or the new record), not
        // fsync'd on every change: the hot paths save several times; shutdown syncs.
        try FS.atomicWrite(paths.record(c.id), Array(data), mode: 0o600, durable: false)
    }

    func update(_ id: String, _ change: (inout StoredContainer) -> Void) {
        guard var c = containers[id] else { return }
        change(&c)
        do { try save(c) } catch { containers[id] = c }
    }

    /// Records that `op` is about to begin, durably (temp file, fsync, rename, fsync of the
    /// directory) — only then may it freeze, dump or restore anything. Throws when it cannot
    /// be recorded, before anything is touched.
    func beginOperation(_ id: String, _ op: PendingOperation) throws {
        guard var c = containers[id] else { throw EngineError.noSuchContainer(id) }
        c.operation = op
        let data = try JSONEncoder().encode(c)
        do {
            try FS.atomicWrite(paths.record(id), Array(data), mode: 0o600, durable: true)
        } catch {
            throw EngineError.internalError("recording the \(op.kind.rawValue) of \(c.name) before it starts: \(error)")
        }
        containers[id] = c
    }

    /// The operation is over (done or undone). Not fsync'd: a record that still shows it after
    /// a power loss is resolved again at start, to the same outcome.
    func endOperation(_ id: String) {
        update(id) { $0.operation = nil }
    }

    func lock(_ id: String) async {
        if locked.contains(id) {
            await withCheckedContinuation { lockWaiters[id, default: []].append($0) }
        } else {
            locked.insert(id)
        }
    }

    func unlock(_ id: String) {
        if var w = lockWaiters[id], !w.isEmpty {
            let next = w.removeFirst()
            lockWaiters[id] = w
            next.resume()
        } else {
            locked.remove(id)
        }
    }

    func withLock<T: Sendable>(_ id: String, _ body: () async throws -> T) async throws -> T {
        await lock(id)
        defer { unlock(id) }
        return try await body()
    }

    // MARK: recovery

    /// Loads every container record and reconciles it with what is really running:
    /// live monitors are watched again, exits that happened meanwhile are recorded,
    /// containers lost to a reboot are restored from their shutdown checkpoint.
    public func recover() async {
        for id in (try? FS.listDirectory(paths.containers)) ?? [] {
            guard let bytes = try? FS.readBytes(paths.record(id)),
                  let c = try? JSONDecoder().decode(StoredContainer.self, from: Data(bytes)) else { continue }
            containers[c.id] = c
        }
        for c in containers.values where c.status == .removing {
            try? await removeNow(c.id)
        }
        // Checkpoints and restores a killed cryod left in progress, before anything else.
        for c in containers.values where c.operation != nil {
            await resolveInterrupted(c.id)
        }
        removeStrayIncompleteCheckpoints()
        for c in containers.values {
            if c.isRunning || c.status == .restarting {
                if Processes.isAlive(pid: c.monitorPid, startTime: c.monitorStartTime) {
                    syncPausedState(c.id)
                    watch(c.id)
                } else {
                    await monitorGone(c.id)
                }
            } else {
                await stopUnrecordedStart(c.id)
            }
        }
        for c in containers.values where c.restoreOnStart != nil && !c.isRunning {
            let name = c.restoreOnStart!
            do {
                try await start(c.id, checkpoint: name, checkpointDir: nil)
                try? FS.removeAll(paths.checkpoints(c.id) + "/" + name)
                update(c.id) { $0.restoreOnStart = nil }
            } catch {
                update(c.id) { $0.error = "restore at start from checkpoint \(name) failed: \(error)" }
            }
        }
    }

    /// A running container's record says what its cgroup is: paused (frozen) or running.
    func syncPausedState(_ id: String) {
        guard let c = containers[id], c.isRunning, let st = try? runtime.state(id: id) else { return }
        let status: ContainerStatus = st.status == "paused" ? .paused : .running
        if status != c.status { update(id) { $0.status = status } }
    }

    /// The monitor is gone: take its exit record, or note that the container was lost.
    func monitorGone(_ id: String, reported: ExitRecord? = nil) async {
        let wasCheckpoint = checkpointExits.contains(id)
        checkpointExits.remove(id)
        // Whatever outlived the monitor (it was killed) goes: the record is about to say
        // exited. (A checkpoint that stops the container cleans up after itself; a monitor
        // whose socket merely failed us is alive, and so is its container.)
        // (A monitor that ended normally removed the runtime state first: no wait then.)
        if !wasCheckpoint, FS.exists(runtime.store.dir(id)), let c = containers[id], await monitorHasExited(c) {
            await discardRuntimeLeftovers(id)
        }
        let exitRec = (try? FS.readBytes(paths.exitRecord(id))).flatMap { try? JSONDecoder().decode(ExitRecord.self, from: Data($0)) }
            ?? reported
        if let why = exitRec?.recordError { note(id, why) }
        update(id) { c in
            guard c.isRunning || c.status == .restarting else { return }
            c.status = .exited
            c.pid = 0
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
        // The network goes with the process (Docker tears it down at stop too): the address
        // and published ports are released before anyone waiting for the exit goes on.
        await beginNetworkTeardown(id).value
        let code = containers[id]?.exitCode ?? 255
        for w in exitWaiters.removeValue(forKey: id) ?? [] { w.continuation.resume(returning: code) }
        if let c = containers[id], c.hostConfig.AutoRemove == true, !wasCheckpoint {
            Task { try? await self.remove(id, force: true) }
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
