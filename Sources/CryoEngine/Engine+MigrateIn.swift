import CryoImages
import CryoLinux
import CryoMigration
import CryoMonitor
import CryoNetwork
import CryoRuntime
import FoundationEssentials
import Glibc

/// The target's side of `cryo migrate`: one call per arriving control connection. It checks
/// the offer, receives the layers, CRIU's pages (through `criu page-server`), images,
/// rootfs changes and log, restores the container with its network locked, and keeps it
/// only when the source commits. Anything else — an abort, a closed connection, a failure
/// here — removes whatever was made, and the source resumes its copy.
extension Engine {
    public func receiveMigration(_ stream: any ByteStream) async {
        let ch = FrameChannel(stream)
        var session: String?
        var made: String?           // the container created here, until committed
        var committed = false
        var pageServer: PageServerProcess?
        var lazyStream: (any ByteStream)?      // post-copy: the page stream, for criu lazy-pages
        var lazySocket: Int32 = -1             // … or the source's own connection (local page socket)
        defer { if lazySocket >= 0 { close(lazySocket) } }
        var lazy: LazyPagesProcess?
        var reserved: (network: String, ip: String)?
        var pageListener: LocalPageSocket.Listener?   // a source on this machine: its own page socket
        defer { pageListener?.close() }
        do {
            guard case .offer(let offer) = try await ch.receive() else {
                throw MigrationWireError.unexpected("the first message must be an offer")
            }
            guard offer.session.count == 64, offer.session.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
                throw MigrationWireError.malformed("session id")
            }
            session = offer.session
            let dir = paths.migration(offer.session)
            let src: StoredContainer
            let image: StoredImage
            do {
                src = try JSONDecoder().decode(StoredContainer.self, from: Data(offer.container))
                image = try JSONDecoder().decode(StoredImage.self, from: Data(offer.image))
                guard src.id.count == 64, src.id.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
                    throw MigrationWireError.malformed("container id")
                }
                _ = try Names.validate(src.name)
            } catch {
                throw MigrationWireError.malformed("offer: \(error)")
            }
            if let refusal = await checkOffer(offer, src) {
                try await ch.send(.refuse(reason: refusal))
                await stream.close()
                await removeOffActor(dir)
                return
            }
            // The address is this container's here from now on: nobody else's attach takes it.
            if let name = offer.network, let ip = offer.ip {
                do { try await reserveAddress(network: name, ip: ip, owner: src.id) } catch {
                    try await ch.send(.refuse(reason: "address \(ip) on network \(name) cannot be reserved here: \(error)"))
                    await stream.close()
                    await removeOffActor(dir)
                    return
                }
                reserved = (name, ip)
            }
            let store = images
            let missing = try await blocking {
                (try? store.inspect(image.id.description)) != nil ? []
                    : image.layers.filter { !FS.isDirectory(store.layerPath($0)) }.map(\.description)
            }
            if offer.localPages == true {
                // Failing that, the page stream comes the usual way (relayed).
                let path = paths.execRoot + "/mp-" + offer.session.prefix(16)
                pageListener = try? await blocking { try LocalPageSocket.Listener.open(path: path) }
            }
            if pageListener == nil { migrationStreams.expect(offer.session) }
            try await ch.send(.accept(missingLayers: missing, pageSocket: pageListener?.offer))

            var layerDirs: [Digest: String] = [:]
            let tarErrors = dir + "/tar.err"
            loop: while true {
                let message = try await ch.receive()
                switch message {
                case .layer(let d):
                    guard missing.contains(d), let digest = try? Digest(d) else {
                        throw MigrationWireError.unexpected("layer \(d), which was not asked for")
                    }
                    let into = dir + "/layers/" + digest.hex
                    try await blocking { try FS.mkdirAll(into, mode: 0o700) }
                    try await receiveTree(ch, into: into, errorFile: tarErrors)
                    layerDirs[digest] = into
                case .pages:
                    // A is about to freeze: the container is made here now, not in its downtime.
                    made = try await prepareMigrated(offer, src, image, layerDirs: layerDirs, dir: dir)
                    if let listener = pageListener {
                        let fd = try await listener.accept(seconds: 30)
                        listener.close()
                        pageListener = nil
                        Trace.mark("migrate-in: page socket connected")
                        if offer.postCopy {
                            lazySocket = fd   // handed to criu lazy-pages at restore
                            continue loop
                        }
                        let criu = try await blocking { try MigrationChecks.criuPath() }
                        let server = try await PageServerProcess.start(criuPath: criu, imagesDir: dir + "/images", socket: fd)
                        pageServer = server
                        await faultPoint("migrate-in-page-server", criu: server.pid)
                        continue loop
                    }
                    let ps = try await migrationStreams.wait(offer.session, seconds: 30)
                    Trace.mark("migrate-in: page stream open")
                    if offer.postCopy {
                        lazyStream = ps   // pulled through by criu lazy-pages, started at restore
                        continue loop
                    }
                    let criu = try await blocking { try MigrationChecks.criuPath() }
                    let server = try await PageServerProcess.start(criuPath: criu, imagesDir: dir + "/images")
                    pageServer = server
                    if let into = server.stream { Task { _ = try? await PageStream.relay(ps, into) } }
                    await faultPoint("migrate-in-page-server", criu: server.pid)
                case .files(let set):
                    let into = dir + "/" + set.rawValue
                    try await blocking { try FS.mkdirAll(into, mode: 0o700) }
                    try await receiveTree(ch, into: into, errorFile: tarErrors)
                    Trace.mark("migrate-in: \(set.rawValue) received")
                case .restore where offer.postCopy:
                    guard lazyStream != nil || lazySocket >= 0, let id = made else { throw MigrationWireError.unexpected("restore before the pages") }
                    do {
                        let work = Self.migrationRestoreWork(paths, id)
                        let criu = try await blocking {
                            unlink(LazyPagesWatchdogReport.path(workDir: work))
                            return try MigrationChecks.criuPath()
                        }
                        let given = lazySocket >= 0 ? lazySocket : nil
                        lazySocket = -1   // the daemon's now, in every case
                        let daemon = try await LazyPagesProcess.start(
                            criuPath: criu, imagesDir: dir + "/images", workDir: work,
                            watchdog: .init(binary: monitorBinary, runtimeRoot: paths.runtimeRoot, containerID: id), socket: given)
                        lazy = daemon
                        Trace.mark("migrate-in: criu lazy-pages ready")
                        if let ps = lazyStream, let into = daemon.stream { Task { _ = try? await PageStream.relay(ps, into) } }
                        try await working(ch) { try await self.restoreMigrated(id, offer, src, dir: dir) }
                    } catch {
                        // Whatever was restored dies before the daemon holding its memory.
                        if let id = made { await discardMigrated(id) }
                        made = nil
                        if let daemon = lazy { await daemon.cancel() }
                        lazy = nil
                        try await ch.send(.failed(reason: "\(error)"))
                        break loop
                    }
                    Trace.mark("migrate-in: restored")
                    await faultPoint("migrate-in-restored")
                    try await ch.send(.restored(initPid: record(id)?.pid ?? 0, restoreMs: 0))
                case .commit where offer.postCopy:
                    guard let id = made, let daemon = lazy else { throw MigrationWireError.unexpected("commit before a restore") }
                    // It runs now (unlocked, announced); the record keeps the migration until every
                    // page is here, so a restart of this cryod kills a copy that may lack memory.
                    try await unlockMigrated(id)
                    // From here the daemon's status alone decides (A may be gone meanwhile).
                    try? await ch.send(.running)
                    Trace.mark("migrate-in: running, unlocked")
                    await faultPoint("migrate-in-running", criu: daemon.pid)
                    let started = Monotonic.now()
                    let status = (try? await daemon.wait()) ?? -1
                    Trace.mark("migrate-in: criu lazy-pages exited \(status)")
                    lazy = nil
                    if status == 0 {
                        try await settleMigrated(id)
                        committed = true
                        await faultPoint("migrate-in-committed")
                        try? await ch.send(.committed)
                    } else {
                        // The kernel serves pages it never got as zeros now: the copy dies first.
                        let rt = runtime
                        try? await blocking { try rt.kill(id: id, signal: SIGKILL, all: true) }
                        let secs = Self.seconds(started.elapsedMilliseconds, digits: 1)
                        let lastError = await (try? blocking { daemon.errors().split(separator: "\n").last.map(String.init) }) ?? nil
                        let why = "the memory stream from the source broke \(secs) s after the container resumed on this host (criu lazy-pages exited with status \(status): \(lastError ?? "no log")); pages it had not fetched were missing, so the copy here was killed"
                        EngineLog.logger.warning("post-copy migration \(offer.session.prefix(12)) of \(src.name): \(why)")
                        await discardMigrated(id)
                        made = nil
                        try? await ch.send(.lost(reason: why))
                    }
                    break loop
                case .restore:
                    guard let server = pageServer, let id = made else { throw MigrationWireError.unexpected("restore before the pages") }
                    do {
                        try await working(ch) {
                            try await server.finish()
                            pageServer = nil
                            Trace.mark("migrate-in: page server done")
                            try await self.restoreMigrated(id, offer, src, dir: dir)
                        }
                    } catch {
                        if let id = made { await discardMigrated(id) }
                        made = nil
                        try await ch.send(.failed(reason: "\(error)"))
                        break loop
                    }
                    Trace.mark("migrate-in: restored")
                    await faultPoint("migrate-in-restored")
                    try await ch.send(.restored(initPid: record(made!)?.pid ?? 0, restoreMs: 0))
                case .commit:
                    guard let id = made else { throw MigrationWireError.unexpected("commit before a restore") }
                    try await commitMigrated(id)
                    Trace.mark("migrate-in: committed, unlocked")
                    committed = true
                    await faultPoint("migrate-in-committed")
                    try await ch.send(.committed)
                    break loop
                case .abort(let reason):
                    EngineLog.logger.warning("migration \(offer.session.prefix(12)) of \(src.name) aborted by the source: \(reason)")
                    break loop
                default:
                    throw MigrationWireError.unexpected(message.name)
                }
            }
        } catch {
            EngineLog.logger.error("incoming migration \(session?.prefix(12) ?? "?"): \(error)")
        }
        if let s = session { migrationStreams.cancel(s) }
        if let server = pageServer { await server.cancel() }
        if !committed, let id = made, let c = record(id), c.isRunning {
            // Killed at once, and before its lazy-pages daemon goes (whose end would let
            // faults on missing pages read zeros).
            let rt = runtime
            try? await blocking { try rt.kill(id: id, signal: SIGKILL, all: true) }
        }
        if let daemon = lazy { await daemon.cancel() }
        if !committed, let id = made { await discardMigrated(id) }
        if !committed, let r = reserved { try? await releaseAddress(network: r.network, ip: r.ip) }
        await stream.close()
        if let s = session { await removeOffActor(paths.migration(s)) }
    }

    /// Runs `body` while telling A every second that this side is alive (A, frozen, gives up
    /// on a silent target: see `SilenceWatch`).
    func working<T: Sendable>(_ ch: FrameChannel, _ body: () async throws -> T) async throws -> T {
        let beat = Task {
            while true {
                try await Task.sleep(nanoseconds: 1_000_000_000)
                try await ch.send(.working)
            }
        }
        defer { beat.cancel() }
        return try await body()
    }

    /// Data frames → `tar --extract` into `into`; checked (length, sha256) at the end.
    nonisolated func receiveTree(_ ch: FrameChannel, into: String, errorFile: String) async throws {
        let tar = try await TarProcess.extract(into: into, errorFile: errorFile)
        do {
            _ = try await ch.receiveData { bytes in try await tar.stream.write(copy bytes) }
        } catch {
            await tar.cancel()
            throw error
        }
        await tar.stream.closeWrite()
        try await tar.finish()
        await tar.stream.close()
    }

    /// Everything checked before the source freezes anything; nil: acceptable.
    func checkOffer(_ offer: MigrationOffer, _ src: StoredContainer) async -> String? {
        var problems: [String] = []
        if let other = allRecords.first(where: { $0.name == src.name }) {
            problems.append("a container named \(src.name) already exists here (\(other.id.prefix(12)))")
        }
        if slots[src.id] != nil { problems.append("a container with id \(src.id.prefix(12)) already exists here") }
        if let name = offer.network {
            let store = networks
            if let net = try? await blocking({ try store.inspect(name) }) {
                if let d = offer.driver, net.driver != d { problems.append("network \(name) here uses driver \(net.driver), the container's uses \(d)") }
                if let s = offer.subnet, net.subnet != s { problems.append("network \(name) here has subnet \(net.subnet), the container's has \(s)") }
                if let ip = offer.ip, let user = allRecords.first(where: { $0.networkName == name && $0.endpoint?.ip == ip }) {
                    problems.append("address \(ip) on network \(name) is used here by container \(user.name)")
                }
            } else {
                problems.append("there is no network named \(name) here (create it with the same driver and subnet \(offer.subnet ?? "?"))")
            }
        }
        // Its volumes come with it: a named one that exists here must be empty and unused.
        let users = volumeUsers()
        let volumeStore = volumes
        let named = (src.volumes ?? []).filter { !$0.anonymous }.map(\.name)
        let busy = (try? await blocking {
            named.filter { n in (try? volumeStore.get(n)) != nil && (users[n] != nil || !volumeStore.isEmpty(n)) }
        }) ?? named
        for n in busy {
            problems.append("volume \(n) exists here and is \(users[n] != nil ? "mounted by a container here" : "not empty"): the container's volume would be put over it (remove it here, or migrate elsewhere)")
        }
        let sources = offer.bindSources
        let absent = (try? await blocking { sources.filter { !FS.exists($0) } }) ?? sources
        if !absent.isEmpty { problems.append("bind-mounted host paths missing here: \(absent.joined(separator: ", "))") }
        let dir = paths.migration(offer.session)
        let root = paths.root
        let criuProblem: String?
        do { criuProblem = try await blocking { () -> String? in
            try FS.mkdirAll(dir + "/images", mode: 0o700)
            let criu = try MigrationChecks.criuPath()
            let version = try MigrationChecks.criuVersion(criu: criu)
            if !MigrationChecks.supported(version) { return "CRIU here is \(version); 4.2 or newer is needed" }
            try FS.atomicWrite(dir + "/cpuinfo.img", offer.cpuinfo, mode: 0o600, durable: false)
            if let why = MigrationChecks.checkCPUInfo(criu: criu, dir: dir) {
                return "this CPU lacks features the container may use (criu cpuinfo check: \(why))"
            }
            let free = MigrationChecks.freeBytes(root)
            if free < offer.bytesNeeded + (64 << 20) {
                return "not enough disk space here: \(free >> 20) MiB free, \((offer.bytesNeeded >> 20) + 64) MiB needed"
            }
            return nil
        } } catch {
            criuProblem = "cannot check CRIU here: \(error)"
        }
        if let p = criuProblem { problems.append(p) }
        return problems.isEmpty ? nil : problems.joined(separator: "; ")
    }

    /// The container as it was on the source, made here (image adopted, record and bundle
    /// written, the migration recorded durably) while the source is still running. Returns
    /// its id; nothing of it is left if this fails.
    func prepareMigrated(_ offer: MigrationOffer, _ src: StoredContainer, _ image: StoredImage,
                         layerDirs: [Digest: String], dir: String) async throws -> String {
        let store = images
        let config = offer.imageConfig
        try await blocking {
            if (try? store.inspect(image.id.description)) == nil {
                try store.adopt(image, config: config, layerDirs: layerDirs)
            }
        }
        let req = CreateContainerRequest(config: src.config, hostConfig: src.hostConfig)
        let volumeStore = volumes
        let existing = try await blocking { Set((src.volumes ?? []).filter { !$0.anonymous }.map(\.name).filter { (try? volumeStore.get($0)) != nil }) }
        // Born with its migrate-in operation, in one durable write: a cryod killed at any point
        // leaves either no record or one its restart removes (never a stray created copy).
        let op = PendingOperation(kind: .migrateIn, checkpoint: offer.session, directory: dir, began: rfc3339Now())
        let (created, restarts, ip, mac) = (src.created, src.restartCount, src.requestedIP, src.macAddress ?? src.endpoint?.mac)
        let id = try await create(name: src.name, req, fixedID: src.id) { c in
            c.created = created
            c.restartCount = restarts
            c.requestedIP = ip
            c.migrationSession = offer.session
            c.macAddress = mac
            c.operation = op
            // Anonymous ones get new names here (as at create); named ones keep theirs.
            let made = (c.volumes ?? []).map(\.name).filter { !existing.contains($0) }
            c.migrationVolumes = made.isEmpty ? nil : made
        }
        await faultPoint("migrate-in-created")
        return id
    }

    /// Restores container `id` from the received images, with its network locked.
    func restoreMigrated(_ id: String, _ offer: MigrationOffer, _ src: StoredContainer, dir: String) async throws {
        let p = paths
        let here = try resolve(id)
        let volumeStore = volumes
        try await blocking {
            try CheckpointImageSizes.record(imageDir: dir + "/images")
            // The writable layer and the log, as they were on the source.
            try? FS.removeAll(p.upper(id))
            try sys(rename(dir + "/rootfs", p.upper(id)), "rename", "\(dir)/rootfs -> \(p.upper(id))")
            let log = dir + "/log/" + src.id + "-json.log"
            if FS.exists(log) { try sys(rename(log, p.log(id)), "rename", "\(log) -> \(p.log(id))") }
            // Each volume's contents, matched by where it is mounted (an anonymous volume has a
            // new name here), moved into this host's empty volume.
            for v in here.volumes ?? [] {
                guard let from = src.volumes?.first(where: { $0.destination == v.destination }) else { continue }
                let received = dir + "/volumes/" + from.name + "/_data"
                guard FS.isDirectory(received) else { continue }
                let data = volumeStore.data(v.name)
                guard volumeStore.isEmpty(v.name) else {
                    throw CryoFailure(.conflict, "volume \(v.name) here is no longer empty: the migrated contents for \(v.destination) are not put over it")
                }
                try? FS.removeAll(data)
                try sys(rename(received, data), "rename", "\(received) -> \(data)")
            }
            // /dev/shm: a fresh tmpfs holding what the source's held (launch keeps a mounted one).
            try ShmMount.prepare(p.shm(id), fresh: true, size: src.hostConfig.ShmSize ?? 0)
            if FS.isDirectory(dir + "/shm") {
                let cp = try Spawn.run(path: "/bin/cp", args: ["/bin/cp", "-a", dir + "/shm/.", p.shm(id) + "/"],
                                       env: ["PATH=/usr/bin:/bin"], timeoutMs: 120_000)
                guard cp.status == 0 else {
                    throw CryoFailure(.internal, "copying the migrated /dev/shm into \(p.shm(id)) failed: \(String(decoding: cp.stderr, as: UTF8.self))")
                }
            }
        }
        Trace.mark("migrate-in: files in place")
        let c = try resolve(id)
        // Where CRIU dumped from is told by the images (the source dumps from inside).
        let imageDir = dir + "/images"
        let (holdsNetns, punches) = try await blocking {
            (Runtime.imagesHoldNetworkNamespace(imageDir), !offer.postCopy && MigrationChecks.canPunchHoles(imageDir))
        }
        var restore = Self.restorePlan(c, checkpoint: imageDir, metadata: CheckpointMetadata(tcpEstablished: offer.tcpEstablished),
                                       workPath: Self.migrationRestoreWork(p, id),
                                       imagesHoldNetworkNamespace: { holdsNetns })
        restore.keepNetworkLocked = true
        restore.lazyPages = offer.postCopy   // criu lazy-pages listens in the same work directory
        // Stop-and-copy: the received pages are freed from the page cache as CRIU reads them
        // into the new process (128 MiB at a time), so that process's memory is largely made of
        // pages just freed: this host holds the memory once, not twice, and allocates half as
        // much fresh memory on the frozen path (on a VM whose host reclaims free guest memory,
        // fresh memory is what makes the restore slow). The images are this migration's alone.
        restore.autoDedup = punches
        do {
            try await withLock(id) {
                try await launch(c, restore: restore, restoreIP: offer.ip, restorePorts: src.portMappings)
            }
        } catch {
            await failedStart(id, error)
            throw error
        }
    }

    /// CRIU's work directory for a migration's restore (post-copy: criu lazy-pages' too).
    nonisolated static func migrationRestoreWork(_ p: EnginePaths, _ id: String) -> String {
        p.containerDir(id) + "/restore-work"
    }

    /// The source let its copy go: ours is the container. Unlocked, and its record durable.
    func commitMigrated(_ id: String) async throws {
        try await unlockMigrated(id)
        try await settleMigrated(id)
    }

    /// The migrated copy talks to the world: unlocked, its address announced.
    func unlockMigrated(_ id: String) async throws {
        guard let c = record(id) else { throw EngineError.noSuchContainer(id) }
        let netns = paths.netns(id)
        if Self.networkHandling(c, criuInside: true).locker == .cryo {   // the restore plan's lock
            try await blocking { try NetworkLock.unlock(netnsPath: netns) }
            // The segment learns where the address lives now (the source withdrew it).
            if let e = c.endpoint { announce(e, netns: netns) }
        }
    }

    /// The migration is over here: its operation leaves the record, durably (the commit point
    /// a restarted source asks about).
    func settleMigrated(_ id: String) async throws {
        guard var now = record(id) else { throw EngineError.noSuchContainer(id) }
        now.operation = nil
        now.migrationVolumes = nil
        try await recordWriter.write(now, to: paths.record(id), durable: true)
        slots[id]?.record = now
    }

    /// A migrated container that was not committed: killed and removed.
    func discardMigrated(_ id: String) async {
        guard let c = record(id) else { return }
        let rt = runtime
        let bundle = paths.bundle(id)
        let running = c.isRunning
        // Polled, not waited for through the monitor: at recovery nobody watches it yet.
        try? await blocking {
            if running || !rt.livePids(id: id, bundle: bundle).isEmpty {
                try? rt.resume(id: id)
                try? rt.kill(id: id, signal: SIGKILL, all: true)
                let start = Monotonic.now()
                while !rt.livePids(id: id, bundle: bundle).isEmpty, start.elapsedSeconds < 10 { usleep(20_000) }
            }
        }
        try? await removeNow(id)
        // Its volumes: those the migration made go, those that were here (empty) are emptied.
        let users = volumeUsers()
        let store = volumes
        let madeHere = Set(c.migrationVolumes ?? [])
        for v in c.volumes ?? [] where users[v.name] == nil {
            try? await blocking {
                if madeHere.contains(v.name) {
                    try store.remove(v.name)
                } else if try store.get(v.name) != nil {
                    let data = store.data(v.name)
                    try FS.removeAll(data)
                    try FS.mkdirAll(data, mode: 0o755)
                }
            }
        }
    }

    /// For a source whose answer to the commit was lost: whether session `session` was
    /// committed here (a container carries it, with no migration pending).
    public func migrationCommitted(_ session: String) -> Bool {
        allRecords.contains { $0.migrationSession == session && $0.operation == nil }
    }
}
