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
        var reserved: (network: String, ip: String)?
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
                try? FS.removeAll(dir)
                return
            }
            // The address is this container's here from now on: nobody else's attach takes it.
            if let name = offer.network, let ip = offer.ip {
                do { try await reserveAddress(network: name, ip: ip, owner: src.id) } catch {
                    try await ch.send(.refuse(reason: "address \(ip) on network \(name) cannot be reserved here: \(error)"))
                    await stream.close()
                    try? FS.removeAll(dir)
                    return
                }
                reserved = (name, ip)
            }
            let missing = (try? images.inspect(image.id.description)) != nil ? []
                : image.layers.filter { !FS.isDirectory(images.layerPath($0)) }.map(\.description)
            migrationStreams.expect(offer.session)
            try await ch.send(.accept(missingLayers: missing))

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
                    try FS.mkdirAll(into, mode: 0o700)
                    try await receiveTree(ch, into: into, errorFile: tarErrors)
                    layerDirs[digest] = into
                case .pages:
                    // A is about to freeze: the container is made here now, not in its downtime.
                    made = try await prepareMigrated(offer, src, image, layerDirs: layerDirs, dir: dir)
                    let ps = try await migrationStreams.wait(offer.session, seconds: 30)
                    let server = try await PageServerProcess.start(criuPath: try MigrationChecks.criuPath(), imagesDir: dir + "/images")
                    pageServer = server
                    Task { _ = try? await PageStream.relay(ps, server.stream) }
                case .files(let set):
                    let into = dir + "/" + set.rawValue
                    try FS.mkdirAll(into, mode: 0o700)
                    try await receiveTree(ch, into: into, errorFile: tarErrors)
                case .restore:
                    guard let server = pageServer, let id = made else { throw MigrationWireError.unexpected("restore before the pages") }
                    do {
                        try await server.finish()
                        pageServer = nil
                        try await restoreMigrated(id, offer, src, dir: dir)
                    } catch {
                        if let id = made { await discardMigrated(id) }
                        made = nil
                        try await ch.send(.failed(reason: "\(error)"))
                        break loop
                    }
                    FaultPoint.hit("migrate-in-restored")
                    try await ch.send(.restored(initPid: containers[made!]?.pid ?? 0, restoreMs: 0))
                case .commit:
                    guard let id = made else { throw MigrationWireError.unexpected("commit before a restore") }
                    try await commitMigrated(id)
                    committed = true
                    FaultPoint.hit("migrate-in-committed")
                    try await ch.send(.committed)
                    break loop
                case .abort(let reason):
                    FileHandleStderr.write("cryod: migration \(offer.session.prefix(12)) of \(src.name) aborted by the source: \(reason)\n")
                    break loop
                default:
                    throw MigrationWireError.unexpected(message.name)
                }
            }
        } catch {
            FileHandleStderr.write("cryod: incoming migration \(session?.prefix(12) ?? "?"): \(error)\n")
        }
        if let s = session { migrationStreams.cancel(s) }
        if let server = pageServer { await server.cancel() }
        if !committed, let id = made { await discardMigrated(id) }
        if !committed, let r = reserved { try? await releaseAddress(network: r.network, ip: r.ip) }
        await stream.close()
        if let s = session { try? FS.removeAll(paths.migration(s)) }
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
        if offer.postCopy { problems.append("post-copy (lazy pages) is not available in this cryod yet") }
        if let other = containers.values.first(where: { $0.name == src.name }) {
            problems.append("a container named \(src.name) already exists here (\(other.id.prefix(12)))")
        }
        if containers[src.id] != nil { problems.append("a container with id \(src.id.prefix(12)) already exists here") }
        if let name = offer.network {
            if let net = try? networks.inspect(name) {
                if let d = offer.driver, net.driver != d { problems.append("network \(name) here uses driver \(net.driver), the container's uses \(d)") }
                if let s = offer.subnet, net.subnet != s { problems.append("network \(name) here has subnet \(net.subnet), the container's has \(s)") }
                if let ip = offer.ip, let user = containers.values.first(where: { $0.networkName == name && $0.endpoint?.ip == ip }) {
                    problems.append("address \(ip) on network \(name) is used here by container \(user.name)")
                }
            } else {
                problems.append("there is no network named \(name) here (create it with the same driver and subnet \(offer.subnet ?? "?"))")
            }
        }
        let absent = offer.bindSources.filter { !FS.exists($0) }
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
        let id = try await create(name: src.name, req, fixedID: src.id)
        do {
            update(id) { c in
                c.created = src.created
                c.restartCount = src.restartCount
                c.requestedIP = src.requestedIP
                c.migrationSession = offer.session
                c.macAddress = src.macAddress ?? src.endpoint?.mac
            }
            try beginOperation(id, PendingOperation(kind: .migrateIn, checkpoint: offer.session, directory: dir, began: rfc3339Now()))
        } catch {
            await discardMigrated(id)
            throw error
        }
        return id
    }

    /// Restores container `id` from the received images, with its network locked.
    func restoreMigrated(_ id: String, _ offer: MigrationOffer, _ src: StoredContainer, dir: String) async throws {
        let p = paths
        try await blocking {
            try CheckpointImageSizes.record(imageDir: dir + "/images")
            // The writable layer and the log, as they were on the source.
            try? FS.removeAll(p.upper(id))
            try sys(rename(dir + "/rootfs", p.upper(id)), "rename", "\(dir)/rootfs -> \(p.upper(id))")
            let log = dir + "/log/" + src.id + "-json.log"
            if FS.exists(log) { try sys(rename(log, p.log(id)), "rename", "\(log) -> \(p.log(id))") }
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
        let c = try resolve(id)
        // Where CRIU dumped from is told by the images (the source dumps from inside).
        let imageDir = dir + "/images"
        var restore = Self.restorePlan(c, checkpoint: imageDir, metadata: CheckpointMetadata(tcpEstablished: offer.tcpEstablished),
                                       workPath: p.containerDir(id) + "/restore-work",
                                       imagesHoldNetworkNamespace: { Runtime.imagesHoldNetworkNamespace(imageDir) })
        restore.keepNetworkLocked = true
        do {
            try await withLock(id) {
                try await launch(c, restore: restore, restoreIP: offer.ip, restorePorts: src.portMappings)
            }
        } catch {
            await failedStart(id, error)
            throw error
        }
    }

    /// The source let its copy go: ours is the container. Unlocked, and its record durable.
    func commitMigrated(_ id: String) async throws {
        guard let c = containers[id] else { throw EngineError.noSuchContainer(id) }
        let netns = paths.netns(id)
        if Self.networkHandling(c, criuInside: true).locker == .cryo {   // the restore plan's lock
            try await blocking { try NetworkLock.unlock(netnsPath: netns) }
            // The segment learns where the address lives now (the source withdrew it).
            if let e = c.endpoint { announce(e, netns: netns) }
        }
        guard var now = containers[id] else { throw EngineError.noSuchContainer(id) }
        now.operation = nil
        try FS.atomicWrite(paths.record(id), Array(try JSONEncoder().encode(now)), mode: 0o600, durable: true)
        containers[id] = now
    }

    /// A migrated container that was not committed: killed and removed.
    func discardMigrated(_ id: String) async {
        guard let c = containers[id] else { return }
        let rt = runtime
        let bundle = paths.bundle(id)
        if c.isRunning || !rt.livePids(id: id, bundle: bundle).isEmpty {
            // Polled, not waited for through the monitor: at recovery nobody watches it yet.
            try? await blocking {
                try? rt.resume(id: id)
                try? rt.kill(id: id, signal: SIGKILL, all: true)
                let start = monotonicSeconds()
                while !rt.livePids(id: id, bundle: bundle).isEmpty, monotonicSeconds() - start < 10 { usleep(20_000) }
            }
        }
        try? await removeNow(id)
    }

    /// For a source whose answer to the commit was lost: whether session `session` was
    /// committed here (a container carries it, with no migration pending).
    public func migrationCommitted(_ session: String) -> Bool {
        containers.values.contains { $0.migrationSession == session && $0.operation == nil }
    }
}
