import CryoLinux
import CryoMigration
import CryoMonitor
import CryoRuntime
import FoundationEssentials
import Glibc

/// A migration a killed cryod left half done, settled at start so that exactly one copy of
/// the container runs (or, when that cannot be known, none is let go).
extension Engine {
    /// Source side. CRIU (whose RPC partner died) leaves the tasks frozen in their cgroup,
    /// with the network locked. Only the target knows whether it took over: committed → our
    /// copy goes; not committed → ours runs on; the target unreachable → ours stays frozen,
    /// with an error saying so.
    func resolveInterruptedMigrateOut(_ id: String, _ op: PendingOperation) async {
        guard let c = record(id) else { return }
        let rt = runtime
        let netns = paths.netns(id)
        // Its CRIU worker, if it still runs, is waited for (it answers nobody now).
        let workDir = op.directory + "/images"
        let limit = Self.interruptedWorkLimit
        let worker = op.postCopy == true ? await (try? blocking { Runtime.checkpointWorker(workDir: workDir) }) ?? nil : nil
        if let worker {
            // A post-copy dump's CRIU serves its pages to nobody now (its relay was this cryod),
            // and may wait for a client forever. The tasks are frozen first: CRIU thawed the
            // cgroup once it had seized them, and its death detaches them.
            try? await blocking {
                try? rt.pause(id: id)
                Glibc.kill(worker, SIGKILL)
            }
        }
        _ = try? await blocking { () -> Void in
            let start = Monotonic.now()
            while Runtime.checkpointWorker(workDir: workDir) != nil, start.elapsedSeconds < limit { usleep(50_000) }
        }
        let outcome: MigrationOutcome = op.peer.map { _ in .unknown } ?? .notCommitted
        let asked = op.peer == nil ? outcome : await askOutcome(op.peer!, session: op.checkpoint)
        let bundle = paths.bundle(id)
        let alive = (try? await blocking { !rt.livePids(id: id, bundle: bundle).isEmpty }) ?? false
        switch asked {
        case .committed:
            if alive { try? await blocking { try rt.resume(id: id); try rt.kill(id: id, signal: SIGKILL, all: true) } }
            EngineLog.logger.notice("container \(c.name) was migrated to \(op.peer ?? "?") before cryod stopped: removed here")
            try? await removeNow(id)
            await removeMovedVolumes(c)   // they live on the target now
            await removeOffActor(op.directory)
        case .notCommitted where op.postCopy == true && op.peerRuns == true:
            // The target ran its copy and did not keep it: what it did there is lost; this copy
            // is the state at the freeze, left for the operator (never resumed by itself).
            update(id) {
                $0.status = alive ? .paused : $0.status
                if alive { $0.heldByMigration = MigrationHold(target: op.peer ?? "?", session: op.checkpoint) }
                $0.error = "post-copy migration to \(op.peer ?? "?") (session \(op.checkpoint)) was interrupted after the container had resumed there, and the target did not keep it (its copy is killed when memory is missing): whatever it did there is lost. This copy is its state at the freeze, frozen with its network locked: unpause it to run it from that point, or remove it (rm -f)"
            }
        case .notCommitted:
            if alive {
                try? await blocking {
                    if let att = c.endpoint { try? MigrationChecks.setLink(up: true, netnsPath: netns, interface: att.interface) }
                    try? NetworkLock.unlock(netnsPath: netns)
                    try rt.resume(id: id)
                }
            }
            await removeOffActor(op.directory)
        case .unknown:
            update(id) {
                $0.status = alive ? .paused : $0.status
                if alive { $0.heldByMigration = MigrationHold(target: op.peer ?? "?", session: op.checkpoint) }
                $0.error = "migration to \(op.peer ?? "?") (session \(op.checkpoint)) was interrupted and the target cannot be asked: the container is left frozen here with its network locked. If it runs on the target, remove it here (rm -f); if not, unpause it here"
            }
        }
    }

    /// Target side: a container restored for a migration that was never committed goes.
    /// A post-copy copy may already be dead: its lazy-pages watchdog killed it when the memory
    /// stream broke while this cryod was away, and says so.
    func resolveInterruptedMigrateIn(_ id: String, _ op: PendingOperation) async {
        let name = record(id)?.name ?? id
        let reportPath = LazyPagesWatchdogReport.path(workDir: Self.migrationRestoreWork(paths, id))
        if let data = await (try? blocking { try FS.readBytes(reportPath) }),
           let report = try? JSONDecoder().decode(LazyPagesWatchdogReport.self, from: Data(data)) {
            EngineLog.logger.warning("post-copy migration \(op.checkpoint.prefix(12)) of \(name) LOST its copy here while cryod was down: criu lazy-pages exited with status \(report.lazyPagesStatus) at \(report.at) (\(report.detail)); pages it had not fetched were missing, so the watchdog \(report.killed ? "killed the copy" : "found no copy to kill"); the source keeps its state at the freeze")
        }
        EngineLog.logger.warning("migration \(op.checkpoint.prefix(12)) into \(name) was not committed before cryod stopped: removed")
        await discardMigrated(id)
        await removeOffActor(op.directory)
    }
}
