import CryoHTTP
import CryoLinux
import CryoMigration
import CryoNetwork
import CryoRuntime
import FoundationEssentials
import Glibc

/// The source's side of a post-copy migration (`cryo migrate --post-copy`), from the freeze
/// on (the offer and the layers are stop-and-copy's).
///
/// CRIU dumps everything but the lazy memory (private anonymous pages stay in the frozen
/// tasks) and is answered "failed" at `post-dump`: whatever happens to the page stream, CRIU
/// then leaves the tasks frozen (cryo froze the cgroup first; CRIU puts it back so) with TCP
/// repair off, never kills them — so A keeps a complete copy, frozen in time at the freeze,
/// until B's lazy-pages daemon has exited 0. CRIU still serves the pages after that answer
/// (criu/cr-dump.c `cr_dump_finish`), on 0.0.0.0:PORT of the container's namespace, which
/// cryo's lock closes to everything but loopback on that port: cryod connects from inside and
/// relays it into the second connection to B.
///
/// Before B runs its copy, any failure resumes A's (thawed, unlocked). The durable point is
/// `peerRuns` in A's operation, written before B is told to run: from then on A's copy is
/// never resumed automatically. B answers `committed` (every page there: A kills its copy)
/// or `lost` (B killed its copy, which would have read zeros: A's frozen copy stays, paused,
/// with an Error saying what was lost and what the operator can do).
extension Engine {
    func postCopyOut(_ c: StoredContainer, _ req: MigrationRequest, session: String, dir: String, net: NetworkConfig?,
                     tcp: Bool, ctl: FrameChannel, stream: any ByteStream, pageSocket: LocalPageSocket.Offer?, clock: MigrationClock,
                     bytes initialBytes: MigrationReport.Bytes, layersSent: Int,
                     progress: @escaping @Sendable (MigrationEvent) async -> Void) async throws -> MigrationReport {
        let id = c.id
        let p = paths
        let rt = runtime
        let netns = p.netns(id)
        var bytes = initialBytes
        var pageStream: (any ByteStream)?
        var criuStream: RawStream?
        func closeAll() async {
            await stream.close()
            await pageStream?.close()
            await criuStream?.close()
            await removeOffActor(dir)
        }

        await progress(MigrationEvent(phase: "dump", status: "freezing and dumping (post-copy: the memory stays here and follows)"))
        var op = PendingOperation(kind: .migrateOut, checkpoint: session, directory: dir, leaveRunning: false,
                                  began: rfc3339Now(), peer: req.target, postCopy: true)
        try await beginOperation(id, op)
        do {
            // cryod reaches CRIU's lazy server over the namespace's loopback (up in every
            // container Docker makes; made sure of here, before anything is frozen).
            try await blocking { try MigrationChecks.setLink(up: true, netnsPath: netns, interface: "lo") }
            try await ctl.send(.pages)
            if let offer = pageSocket {
                // A target on this machine: its own socket, read by its criu lazy-pages itself.
                let fd = try await blocking { try LocalPageSocket.connect(offer) }
                pageStream = try await RawStream.adopt(socket: fd)
            } else {
                let ps = try await dial(req.target)
                pageStream = ps
                let rest = try await PeerUpgrade.open(ps, path: "/cryo/migrate/\(session)/pages", peer: req.target)
                guard rest.isEmpty else { throw MigrationWireError.unexpected("bytes before the page stream began") }
            }
        } catch {
            endOperation(id)
            await closeAll()
            throw EngineError.internalError("migration of \(c.name) failed before anything was frozen; it keeps running here: \(error)")
        }
        // Below the ephemeral range: no connection of the container's is likely to hold it (a
        // clash fails the dump's bind, and the container resumes here).
        let port = UInt16.random(in: 20000..<30000)
        var plan = Self.checkpointPlan(c, imagePath: dir + "/images", tcpEstablished: tcp, leaveRunning: false,
                                       pageServer: .lazy(port: Int32(port)))
        plan.completionMarker = nil
        let gate = CommitGate()
        let hooks = CheckpointHooks(atPostDump: { try gate.atPostDump() }, keepFrozenAfterFailure: { gate.keepsFrozen })
        slots[id]?.expectedExit = .migration
        let frozeAt = Monotonic.now()
        let dump = Task { [plan] in
            defer { gate.dumpEnded() }
            try await self.blocking { try rt.checkpoint(id: id, plan: plan, hooks: hooks) }
        }
        guard await gate.arrival() else {
            var why = "the dump ended early"
            do { try await dump.value } catch { why = "\(error)" }
            slots[id]?.expectedExit = nil
            endOperation(id)
            try? await ctl.send(.abort(reason: "the dump failed on the source"))
            await closeAll()
            throw EngineError.internalError("migration of \(c.name) failed while dumping it; it keeps running here: \(why)")
        }
        // Every image but the lazy memory is written. "Failed" keeps the tasks frozen whatever
        // the page stream does; cryod decides what becomes of them.
        gate.decide(commit: false, reason: "post-copy: the source copy stays frozen until the target has every page", keepFrozen: true)
        Trace.mark("migrate-out: post-dump (lazy)")
        clock.phase("dump")
        await faultPoint("migrate-out-dumped")
        // Until B says it runs the copy, a silent B makes this side give up (and resume): see
        // SilenceWatch. The watch closes the connections; the failure paths below follow.
        let watch = SilenceWatch(limit: req.silenceLimit)
        await ctl.onActivity { watch.heard() }
        let lazyPeer = pageStream
        let watching = watch.start {
            EngineLog.logger.warning("migrate \(c.name) to \(req.target): \(watch.describe(target: req.target))")
            await stream.close()
            await lazyPeer?.close()
        }
        defer { watching.cancel() }
        func silenced(_ error: Error) -> Error {
            watch.tripped ? CryoFailure(.unavailable, watch.describe(target: req.target), cause: error) : error
        }

        /// Before B runs anything: A's copy goes on here (the lazy server is let go first).
        func resumeHere(_ why: Error, withdrawn: Bool) async -> Error {
            await criuStream?.close()
            await pageStream?.close()
            _ = try? await dump.value
            try? await blocking {
                if withdrawn, let att = c.endpoint { try? MigrationChecks.setLink(up: true, netnsPath: netns, interface: att.interface) }
                try? NetworkLock.unlock(netnsPath: netns)
                try rt.resume(id: id)
            }
            slots[id]?.expectedExit = nil
            endOperation(id)
            try? await ctl.send(.abort(reason: "\(why)"))
            await closeAll()
            return EngineError.internalError("migration of \(c.name) to \(req.target) failed; it keeps running here: \(why)")
        }

        var withdrawn = false
        let relay: Task<(aToB: UInt64, bToA: UInt64), Error>
        do {
            // CRIU listens once it has had its answer; a refused connect means not yet.
            let fd = try await blocking { () throws -> Int32 in
                let start = Monotonic.now()
                while true {
                    do { return try LazyPageSource.connect(netnsPath: netns, port: port) } catch {
                        if start.elapsedSeconds > 30 { throw error }
                        usleep(2_000)
                    }
                }
            }
            let cs = try await RawStream.adopt(socket: fd)
            criuStream = cs
            guard let ps = pageStream else { throw MigrationWireError.unexpected("no page stream") }
            relay = Task { try await PageStream.relay(cs, ps, moved: { watch.heard() }) }
            Trace.mark("migrate-out: connected to the lazy page server")
            await progress(MigrationEvent(phase: "transfer", status: "sending images, rootfs changes and log"))
            try await sendFileSets(ctl, id: id, dir: dir, bytes: &bytes)
            Trace.mark("migrate-out: files sent")
            clock.phase("transfer")
            await progress(MigrationEvent(phase: "restore", status: "restoring on \(req.target) (memory on demand)"))
            try await ctl.send(.restore)
            switch try await ctl.receive() {
            case .restored: break
            case .failed(let reason): throw CryoFailure(.internal, "the target could not restore it: \(reason)")
            case let other: throw MigrationWireError.unexpected(other.name)
            }
            Trace.mark("migrate-out: restored on the target")
            clock.phase("restore")
            if net?.driver == "macvlan", let att = c.endpoint {
                try await blocking { try MigrationChecks.setLink(up: false, netnsPath: netns, interface: att.interface) }
                withdrawn = true
            }
            // Durable before B is told to run: from here on, A's copy is never resumed by itself.
            op.peerRuns = true
            try await beginOperation(id, op)
        } catch {
            watch.stop()
            throw await resumeHere(silenced(error), withdrawn: withdrawn)
        }

        // B runs it; the memory follows from here.
        var runningAt = Monotonic.now()
        var outcome: Result<Void, Error>
        do {
            try await ctl.send(.commit)
            await faultPoint("migrate-out-postcopy-committing")
            guard case .running = try await ctl.receive() else { throw MigrationWireError.unexpected("no running answer") }
            watch.stop()   // B runs it: from here its lazy-pages exit status decides
            runningAt = Monotonic.now()
            Trace.mark("migrate-out: running on the target")
            await faultPoint("migrate-out-postcopy-running")
            if FaultPoint.cuts("migrate-out-postcopy-running") {
                await pageStream?.close()
                await stream.close()
            }
            clock.phase("resume")
            await progress(MigrationEvent(phase: "pages", status: "running on \(req.target); its memory follows"))
            switch try await ctl.receive() {
            case .committed: outcome = .success(())
            case .lost(let reason): outcome = .failure(CryoFailure(.internal, reason))
            case let other: throw MigrationWireError.unexpected(other.name)
            }
        } catch {
            watch.stop()
            let error = silenced(error)
            // The conversation broke: once the page stream has ended too (CRIU's lazy server
            // returns then), B has settled.
            _ = try? await dump.value
            try? await Task.sleep(nanoseconds: 300_000_000)
            switch await askOutcome(req.target, session: session) {
            case .committed: outcome = .success(())
            case .notCommitted: outcome = .failure(CryoFailure(.internal, "the connection to the target broke (\(error)) and the target did not keep the container"))
            case .unknown: outcome = .failure(CryoFailure(.internal, "the connection to the target broke (\(error)) and it cannot be asked how it ended; if it runs there, remove the copy here"))
            }
        }
        let downtime = runningAt.seconds(since: frozeAt) * 1000
        // CRIU's lazy server has ended (B's daemon closed the stream) or ends now.
        await criuStream?.close()
        _ = try? await dump.value
        bytes.memory = (try? await relay.value)?.aToB ?? bytes.memory
        let pagesMs = runningAt.elapsedMilliseconds
        if case .failure(let why) = outcome {
            // B's copy was killed (or never ran past its restore): what it did there is lost. The
            // copy here is the container as it was at the freeze, frozen and locked.
            slots[id]?.expectedExit = nil
            endOperation(id)
            let seconds = Self.seconds(pagesMs, digits: 1)
            update(id) {
                $0.status = .paused
                $0.heldByMigration = MigrationHold(target: req.target, session: session)
                $0.error = "post-copy migration to \(req.target) (session \(session)) failed after the container had resumed there: \(why). Its copy there was killed rather than left running with missing memory; what it did there in those \(seconds) s is lost. This copy is its state at the freeze, kept frozen with its network locked: unpause it to run it from that point (its TCP peers saw the lost copy: their connections will likely reset), or remove it (rm -f)"
            }
            await closeAll()
            throw EngineError.internalError("post-copy migration of \(c.name) to \(req.target) LOST the running copy: \(why). The target killed its copy (memory was missing; it is never left running with zeros) — whatever the container did on \(req.target) in its \(seconds) s there is lost. Its state at the freeze is kept on this host, frozen (paused, network locked): `cryo unpause \(c.name)` runs it from that point, `cryo rm -f \(c.name)` discards it")
        }
        clock.phase("pages")
        await progress(MigrationEvent(phase: "pages", status: "all pages transferred: \(bytes.memory >> 20) MiB, \(Self.seconds(pagesMs, digits: 2)) s after it resumed on \(req.target)"))
        // Every page is on B: the frozen copy here goes (killed before the thaw: it never runs).
        try? await blocking {
            try? rt.kill(id: id, signal: SIGKILL, all: true)
            try? rt.resume(id: id)
        }
        _ = await waitExit(id, timeout: 30)
        slots[id]?.expectedExit = nil
        endOperation(id)
        await stream.close()
        await pageStream?.close()
        try? await removeNow(id)
        await removeMovedVolumes(c)
        await removeOffActor(dir)
        clock.phase("cleanup")
        var report = MigrationReport(container: c.name, id: id, target: req.target, session: session, mode: "post-copy",
                                     downtimeMs: downtime, totalMs: clock.began.elapsedMilliseconds, phases: clock.phases,
                                     bytes: bytes, layersSent: layersSent)
        report.pagesCompleteMs = pagesMs
        report.pageStream = MigrationReport.pageStream(local: pageSocket != nil)
        return report
    }

    /// Milliseconds as seconds with `digits` decimals.
    nonisolated static func seconds(_ ms: Double, digits: Int) -> String {
        var scale = 1
        for _ in 0..<digits { scale *= 10 }
        let n = Int((ms / 1000 * Double(scale)).rounded())
        guard digits > 0 else { return "\(n)" }
        let frac = String(n % scale)
        return "\(n / scale)." + String(repeating: "0", count: digits - frac.count) + frac
    }
}
