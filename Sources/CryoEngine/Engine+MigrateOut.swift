import CryoImages
import CryoLinux
import CryoMigration
import CryoNetwork
import CryoRuntime
import CryoTLS
import FoundationEssentials
import Glibc

/// The source's side of `cryo migrate` (stop-and-copy). The container is checked by the
/// target before anything is frozen; then it is frozen and dumped with its pages going
/// straight to the target's CRIU page server through cryod's connection, the other images,
/// the rootfs changes and the log follow, the target restores it with its network locked,
/// and only when the target has committed does CRIU (held at `post-dump`) kill the source's
/// tasks. Any failure before that resumes the container here. See MigrationMessage for the
/// conversation.
extension Engine {
    public func migrate(_ ref: String, _ req: MigrationRequest,
                        progress: @escaping @Sendable (MigrationEvent) async -> Void) async throws -> MigrationReport {
        let c = try resolve(ref)
        // Its volumes move with it: none may be shared with a container that stays here, or
        // be about to be (a create in flight), and none may be mounted anew until it is over.
        let users = volumeUsers()
        let shared = (c.volumes ?? []).compactMap { v -> String? in
            let others = (users[v.name] ?? []).filter { $0 != c.id }.compactMap { record($0)?.name }
            if !others.isEmpty { return "\(v.name) (also mounted by \(others.joined(separator: ", ")))" }
            if volumeClaims[v.name] != nil { return "\(v.name) (a container mounting it is being created)" }
            if volumesBeingRemoved.contains(v.name) { return "\(v.name) (being removed)" }
            if let other = volumesMovingOut[v.name] { return "\(v.name) (moving with container \(other))" }
            return nil
        }
        if !shared.isEmpty {
            throw EngineError.conflict("cannot migrate container \(c.name): its volumes move with it, and these are in use here by something that stays: \(shared.joined(separator: "; "))")
        }
        let moving = Set((c.volumes ?? []).map(\.name))
        for v in moving { volumesMovingOut[v] = c.name }
        defer { for v in moving { volumesMovingOut[v] = nil } }
        let id = c.id
        // No probe may run in the container while it is frozen and dumped.
        return try await withLock(id) { try await withHealthMonitorPaused(id) { try await migrateLocked(id, req, progress) } }
    }

    /// Connects to another cryod: unix:// here, tcp:// through the daemon's TLS dialer.
    nonisolated func dial(_ target: String) async throws -> any ByteStream {
        if target.hasPrefix("unix://") {
            let path = String(target.dropFirst("unix://".count))
            do { return try await connectUnixStream(path: path) } catch {
                throw CryoFailure(.unavailable, "cannot reach cryod at \(target)", cause: error)
            }
        }
        guard target.hasPrefix("tcp://") else {
            throw EngineError.bad("migration target \"\(target)\": use tcp://HOST:PORT (mutual TLS) or unix:///PATH")
        }
        guard let dial = options.dialPeer else {
            throw EngineError.bad("this cryod has no TLS identity (start it with --tlsverify --tlscacert --tlscert --tlskey): it cannot authenticate itself to \(target)")
        }
        do { return try await dial(target) } catch {
            throw Self.peerFailure("cannot connect to cryod at \(target)", error)
        }
    }

    /// A failure talking to the target, with its code (unavailable, untrusted, ...) and, for
    /// a TLS refusal, what the target's alert means for this daemon (BoringSSL names only
    /// the alert).
    nonisolated static func peerFailure(_ step: String, _ error: any Error) -> CryoFailure {
        guard let tls = error as? TLSError, let hint = explain(tls) else { return CryoFailure(step, cause: error) }
        return CryoFailure("\(step) (\(hint))", cause: tls)
    }

    nonisolated static func explain(_ e: TLSError) -> String? {
        switch e.alert {
        case .certificateExpired?: return "the target refused this daemon's certificate: it has expired (issue a new one with cryo tls issue)"
        case .unknownCA?: return "the target does not trust the CA that issued this daemon's certificate"
        case .badCertificate?: return "the target refused this daemon's certificate"
        case .certificateRequired?: return "the target requires a client certificate"
        case .handshakeFailure?: return "the TLS handshake failed (no common protocol version or cipher)"
        case .certificateVerifyFailed?: return "this daemon could not verify the target's certificate"
        case nil: return e.kind == .closed ? "the target may have refused this daemon's certificate: its log says why" : nil
        }
    }

    private func migrateLocked(_ id: String, _ req: MigrationRequest,
                               _ progress: @escaping @Sendable (MigrationEvent) async -> Void) async throws -> MigrationReport {
        let clock = MigrationClock()
        let began = clock.began
        func phase(_ name: String) { clock.phase(name) }
        var bytes = MigrationReport.Bytes()
        let c = try resolve(id)
        if let e = StateMachine.check(.checkpoint, status: c.status, id: c.name) { throw e }
        if req.postCopy, c.hostConfig.NetworkMode == "host" {
            // CRIU's lazy page server would listen on the host's own network.
            throw EngineError.bad("cannot migrate container \(c.name) with --post-copy: it uses the host's network (CRIU's lazy page server would listen on it); migrate it without --post-copy")
        }
        if c.hostConfig.PidMode == "host" {
            throw EngineError.bad("cannot migrate container \(c.name): it shares the host's PID namespace (--pid host)")
        }
        let tcp = CheckpointLabels.includesTCP(requested: req.tcpEstablished, labels: c.config.Labels)
        let session = Names.randomID()
        let dir = paths.migration(session)
        let p = paths
        let rt = runtime
        let store = images
        let networkStore = networks
        let (image, imageConfig, layerBytes, net) = try await blocking { () throws -> (StoredImage, [UInt8], UInt64, NetworkConfig?) in
            let image = try store.inspect(c.imageID)
            let layerBytes = image.layers.reduce(UInt64(0)) { $0 + MigrationChecks.treeBytes(store.layerPath($1)) }
            return (image, try FS.readBytes(store.configPath(image.id)), layerBytes, c.networkID.flatMap { try? networkStore.inspect($0) })
        }
        let tarErrors = dir + "/tar.err"
        let volumeStore = volumes
        let uses = c.volumes ?? []
        let volumeBytes = try await blocking { uses.reduce(UInt64(0)) { $0 + UInt64(max(0, volumeStore.size($1.name))) } }

        await progress(MigrationEvent(phase: "check", status: "asking \(req.target)"))
        // What B checks: CRIU's view of this CPU, our CRIU, the bytes it must hold.
        let local = try await blocking { () -> (cpuinfo: [UInt8], criu: String, bytes: UInt64) in
            try FS.mkdirAll(dir + "/images", mode: 0o700)
            try FS.mkdirAll(dir + "/empty", mode: 0o700)   // what is sent for a /dev/shm that is not mounted
            let criu = try MigrationChecks.criuPath()
            try MigrationChecks.dumpCPUInfo(criu: criu, into: dir)
            let cpuinfo = try FS.readBytes(dir + "/cpuinfo.img")
            let version = try MigrationChecks.criuVersion(criu: criu)
            let upper = MigrationChecks.treeBytes(p.upper(id)) + volumeBytes
            let memory = MigrationChecks.residentBytes((try? rt.processes(id: id)) ?? [])
            return (cpuinfo, version, upper + memory)
        }
        let offer = MigrationOffer(
            session: session, container: Array(try JSONEncoder().encode(c)), image: Array(try JSONEncoder().encode(image)),
            imageConfig: imageConfig, layers: image.layers.map(\.description),
            network: net?.name, driver: net?.driver, subnet: net?.subnet, ip: c.endpoint?.ip, mac: c.endpoint?.mac,
            bindSources: MigrationChecks.bindSources(c.hostConfig), cpuinfo: local.cpuinfo, criuVersion: local.criu,
            bytesNeeded: local.bytes + layerBytes, tcpEstablished: tcp, postCopy: req.postCopy,
            localPages: req.target.hasPrefix("unix://"))

        let stream = try await dial(req.target)
        var pageStream: (any ByteStream)?
        func closeAll() async {
            await stream.close()
            await pageStream?.close()
            await removeOffActor(dir)
        }
        let missing: [String]
        var pageSocket: LocalPageSocket.Offer?
        let ctl: FrameChannel
        do {
            ctl = FrameChannel(stream, prefix: try await PeerUpgrade.open(stream, path: "/cryo/migrate", peer: req.target))
            try await ctl.send(.offer(offer))
            switch try await ctl.receive() {
            case .accept(let m, let ps): missing = m; pageSocket = ps
            case .refuse(let reason):
                throw EngineError.conflict("cryod at \(req.target) refused the migration of \(c.name): \(reason)")
            case let other: throw MigrationWireError.unexpected(other.name)
            }
            phase("check")
            // The image layers B lacks, while the container still runs.
            for d in missing {
                guard let digest = image.layers.first(where: { $0.description == d }) else {
                    throw MigrationWireError.unexpected("the target asked for layer \(d), not one of the image's")
                }
                await progress(MigrationEvent(phase: "layers", status: "sending layer \(digest.hex.prefix(12))"))
                try await ctl.send(.layer(diffID: d))
                let tar = try await TarProcess.create(dir: images.layerPath(digest), errorFile: tarErrors)
                bytes.layers += try await ctl.sendData(from: tar.stream).bytes
                try await tar.finish()
            }
            phase("layers")
        } catch {
            await closeAll()
            if let e = error as? EngineError { throw e }
            throw Self.peerFailure("migration of \(c.name) to \(req.target) failed before anything was frozen; it keeps running here", error)
        }

        if req.postCopy {
            return try await postCopyOut(c, req, session: session, dir: dir, net: net, tcp: tcp, ctl: ctl, stream: stream, pageSocket: pageSocket,
                                         clock: clock, bytes: bytes, layersSent: missing.count, progress: progress)
        }
        // Freeze and dump, the pages going to B's page server through a second connection.
        await progress(MigrationEvent(phase: "dump", status: "freezing and dumping"))
        try await beginOperation(id, PendingOperation(kind: .migrateOut, checkpoint: session, directory: dir, leaveRunning: false,
                                                began: rfc3339Now(), peer: req.target))
        let gate = CommitGate()
        var criuFD: Int32 = -1
        // The page stream: relayed into a second connection, or (a target on this machine)
        // B's own socket given to CRIU, watched through a duplicate of it.
        var relay: Task<(aToB: UInt64, bToA: UInt64), Error>?
        var direct: LocalPageSocket.Watched?
        let watch = SilenceWatch(limit: req.silenceLimit)
        let watching: Task<Void, Never>
        do {
            try await ctl.send(.pages)
            await ctl.onActivity { watch.heard() }
            if let offer = pageSocket {
                criuFD = try await blocking { try LocalPageSocket.connect(offer) }
                let watched = try LocalPageSocket.Watched(duplicating: criuFD) { watch.heard() }
                direct = watched
                // A silent target: the socket is shut, CRIU's page writes fail, the dump (or
                // the wait for B) ends in the failure path below, which resumes the container.
                watching = watch.start {
                    EngineLog.logger.warning("migrate \(c.name) to \(req.target): \(watch.describe(target: req.target))")
                    await stream.close()
                    watched.shut()
                }
            } else {
                let ps = try await dial(req.target)
                pageStream = ps
                let rest = try await PeerUpgrade.open(ps, path: "/cryo/migrate/\(session)/pages", peer: req.target)
                guard rest.isEmpty else { throw MigrationWireError.unexpected("bytes before the page stream began") }
                let pair = try await PageStream.pair()
                criuFD = pair.criu
                relay = Task { try await PageStream.relay(pair.relay, ps, moved: { watch.heard() }) }
                // A silent target: every connection closes, CRIU's page writes fail, the dump
                // (or the wait for B) ends in the failure path below, which resumes the container.
                watching = watch.start {
                    EngineLog.logger.warning("migrate \(c.name) to \(req.target): \(watch.describe(target: req.target))")
                    await stream.close()
                    await ps.close()
                    await pair.relay.close()
                }
            }
        } catch {
            endOperation(id)
            direct?.close()
            if criuFD >= 0 { close(criuFD) }
            await closeAll()
            throw EngineError.internalError("migration of \(c.name) failed before anything was frozen; it keeps running here: \(error)")
        }
        var plan = Self.checkpointPlan(c, imagePath: dir + "/images", tcpEstablished: tcp, leaveRunning: false,
                                       pageServer: .socket(fd: criuFD))
        plan.completionMarker = nil   // the commit point is the gate's, not a marker's
        let hooks = CheckpointHooks(atPostDump: { try gate.atPostDump() }, keepFrozenAfterFailure: { gate.keepsFrozen })
        slots[id]?.expectedExit = .migration
        let frozeAt = Monotonic.now()
        let dump = Task { [plan] in
            defer { gate.dumpEnded() }
            try await self.blocking { try rt.checkpoint(id: id, plan: plan, hooks: hooks) }
        }
        /// Once the dump has ended without a commit: the operation is over here, B is told
        /// (unless `abort` is nil) and the connections go.
        func giveUp(abort: String?) async {
            watching.cancel()
            slots[id]?.expectedExit = nil
            endOperation(id)
            if let abort { try? await ctl.send(.abort(reason: abort)) }
            relay?.cancel()
            await closeAll()
        }
        let reached = await gate.arrival()
        Trace.mark("migrate-out: post-dump (every page sent)")
        close(criuFD)   // CRIU holds its own copy until it exits
        direct?.close()   // the pages are all sent (or the dump failed): nothing left to watch
        guard reached else {
            var why = "the dump ended early"
            do { try await dump.value } catch { why = "\(error)" }
            if watch.tripped { why = watch.describe(target: req.target) + " (\(why))" }
            await giveUp(abort: "the dump failed on the source")
            throw EngineError.internalError("migration of \(c.name) failed while dumping it; it keeps running here: \(why)")
        }
        phase("dump")
        await faultPoint("migrate-out-dumped")

        // Frozen, every page on B. The rest of the state, then B restores and commits.
        var withdrawn = false
        var committed = false
        do {
            await progress(MigrationEvent(phase: "transfer", status: "sending images, rootfs changes and log"))
            try await sendFileSets(ctl, id: id, dir: dir, bytes: &bytes)
            Trace.mark("migrate-out: files sent")
            phase("transfer")
            await progress(MigrationEvent(phase: "restore", status: "restoring on \(req.target)"))
            try await ctl.send(.restore)
            switch try await ctl.receive() {
            case .restored: break
            case .failed(let reason): throw CryoFailure(.internal, "the target could not restore it: \(reason)")
            case let other: throw MigrationWireError.unexpected(other.name)
            }
            Trace.mark("migrate-out: restored on the target")
            phase("restore")
            // On a shared segment A's copy must be silent before B announces the address.
            if net?.driver == "macvlan", let att = c.endpoint {
                try await blocking { try MigrationChecks.setLink(up: false, netnsPath: p.netns(id), interface: att.interface) }
                withdrawn = true
            }
            try await ctl.send(.commit)
            committed = true
            await faultPoint("migrate-out-committing")
            guard case .committed = try await ctl.receive() else { throw MigrationWireError.unexpected("no commit answer") }
            watch.stop()
        } catch {
            watch.stop()
            let error: any Error = watch.tripped ? CryoFailure(.unavailable, watch.describe(target: req.target), cause: error) : error
            // Not committed (or the answer to the commit was lost: then B's durable record
            // decides, and B is asked once more).
            let outcome: MigrationOutcome = committed ? await askOutcome(req.target, session: session) : .notCommitted
            if outcome == .unknown {
                // B may run it, or may not: neither copy may be let go. Frozen here, locked,
                // until someone who can see both hosts decides (docker rm -f, or unpause).
                gate.decide(commit: false, reason: "outcome unknown", keepFrozen: true)
                _ = try? await dump.value
                update(id) {
                    $0.status = .paused
                    $0.heldByMigration = MigrationHold(target: req.target, session: session)
                    $0.error = "migration to \(req.target) (session \(session)): the target's answer to the commit was lost and it cannot be asked; the container is frozen here with its network locked. If it runs on the target, remove it here (rm -f); if not, unpause it here"
                }
                await giveUp(abort: nil)
                throw EngineError.internalError("migration of \(c.name) to \(req.target): outcome unknown (\(error)); the container is left frozen here, see its inspect Error")
            }
            if outcome == .notCommitted {
                if withdrawn, let att = c.endpoint {
                    try? await blocking { try MigrationChecks.setLink(up: true, netnsPath: p.netns(id), interface: att.interface) }
                }
                gate.decide(commit: false, reason: "migration to \(req.target) aborted: \(error)")
                _ = try? await dump.value
                await giveUp(abort: "\(error)")
                throw EngineError.internalError("migration of \(c.name) to \(req.target) failed; it keeps running here: \(error)")
            }
        }
        watching.cancel()
        let downtime = frozeAt.elapsedMilliseconds
        Trace.mark("migrate-out: committed")
        phase("commit")
        // B runs it: CRIU kills our copy, and the container is removed here.
        gate.decide(commit: true)
        do { try await dump.value } catch {
            EngineLog.logger.warning("migrate \(c.name): after the commit, the source's dump reported: \(error)")
        }
        _ = await waitExit(id, timeout: 30)
        slots[id]?.expectedExit = nil
        endOperation(id)
        if let relay {
            bytes.memory = (try? await relay.value)?.aToB ?? 0
        } else {
            // No relay counted them: CRIU's own count of the pages it wrote to B.
            let stats = try? await blocking { try FS.readBytes(dir + "/images/stats-dump") }
            bytes.memory = (stats.flatMap(CRIUDumpStats.parse)?.pagesWritten ?? 0) * UInt64(getpagesize())
        }
        await stream.close()
        await pageStream?.close()
        try? await removeNow(id)
        await removeMovedVolumes(c)
        await removeOffActor(dir)
        phase("cleanup")
        let report = MigrationReport(container: c.name, id: id, target: req.target, session: session, mode: "stop-and-copy",
                                     downtimeMs: downtime, totalMs: began.elapsedMilliseconds, phases: clock.phases,
                                     bytes: bytes, layersSent: missing.count, pageStream: MigrationReport.pageStream(local: relay == nil))
        return report
    }

    /// CRIU's other images, the rootfs changes, the log and /dev/shm, each as a tar on `ctl`.
    /// Every tar is started at once (their start-up overlaps); each is sent in turn.
    func sendFileSets(_ ctl: FrameChannel, id: String, dir: String, bytes: inout MigrationReport.Bytes) async throws {
        let p = paths
        let tarErrors = dir + "/tar.err"
        var tars: [(FileSet, TarProcess)] = []
        let shm = p.shm(id)
        let shmMounted = try await blocking { FS.isMountPoint(shm) }
        let volumeRoot = volumes.root
        let volumeMembers = (record(id)?.volumes ?? []).map { $0.name + "/_data" }
        do {
            for set in FileSet.allCases {
                let (from, members): (String, [String]) = switch set {
                case .images: (dir + "/images", ["."])
                case .rootfs: (p.upper(id), ["."])
                case .log: (p.containerDir(id), [id + "-json.log"])
                case .shm: (shmMounted ? p.shm(id) : dir + "/empty", ["."])
                case .volumes: volumeMembers.isEmpty ? (dir + "/empty", ["."]) : (volumeRoot, volumeMembers)
                }
                tars.append((set, try await TarProcess.create(dir: from, members: members, errorFile: tarErrors + "." + set.rawValue)))
            }
            for (set, tar) in tars {
                try await ctl.send(.files(set))
                let n = try await ctl.sendData(from: tar.stream).bytes
                try await tar.finish()
                switch set {
                case .images: bytes.images = n
                case .rootfs: bytes.rootfs = n
                case .log: bytes.log = n
                case .shm: bytes.shm = n
                case .volumes: bytes.volumes = n
                }
            }
        } catch {
            for (_, tar) in tars { await tar.cancel() }
            throw error
        }
    }

    /// After a commit whose answer was lost: asks B whether it committed session `session`.
    /// Only "committed" lets the source's copy go; anything else resumes it.
    /// After a commit: the container's volumes live on the target now; here they go (unless a
    /// container created meanwhile mounts one).
    func removeMovedVolumes(_ c: StoredContainer) async {
        let users = volumeUsers()
        let names = (c.volumes ?? []).map(\.name).filter { users[$0] == nil }
        guard !names.isEmpty else { return }
        let store = volumes
        for n in names {
            do {
                try await blocking { try store.remove(n) }
                events.emit("volume", "destroy", id: n, attributes: ["driver": VolumeStore.driver])
            } catch {
                EngineLog.logger.warning("migrate \(c.name): volume \(n) moved to the target but could not be removed here: \(error)")
            }
        }
    }

    nonisolated func askOutcome(_ target: String, session: String) async -> MigrationOutcome {
        for attempt in 0..<10 {
            if attempt > 0 { try? await Task.sleep(nanoseconds: 500_000_000) }
            guard let s = try? await dial(target) else { continue }
            // A target that accepts but never answers (hung) counts as no answer.
            let deadline = Task {
                try? await Task.sleep(nanoseconds: 5_000_000_000)
                await s.close()
            }
            defer {
                deadline.cancel()
                Task { await s.close() }
            }
            guard let rest = try? await PeerUpgrade.open(s, path: "/cryo/migrate/\(session)/outcome", peer: target) else { continue }
            let ch = FrameChannel(s, prefix: rest)
            if let m = try? await ch.receive() {
                if case .committed = m { return .committed }
                return .notCommitted
            }
        }
        return .unknown
    }
}

/// A migration's phase times.
final class MigrationClock: @unchecked Sendable {
    let began = Monotonic.now()
    private(set) var phases: [MigrationReport.Phase] = []
    private var mark: Monotonic
    init() { mark = began }
    func phase(_ name: String) {
        let now = Monotonic.now()
        phases.append(.init(name: name, ms: now.seconds(since: mark) * 1000))
        mark = now
    }
}

enum MigrationOutcome: Sendable {
    case committed, notCommitted, unknown
}
