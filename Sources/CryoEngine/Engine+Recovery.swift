import CryoLinux
import CryoLog
import CryoMonitor
import CryoRuntime
import FoundationEssentials
import Glibc

/// Resolving checkpoints and restores that a killed cryod left in progress (their
/// `PendingOperation` is still in the record) to what is really there, so that `ps` and
/// `inspect` tell the truth, nothing is left frozen, locked or half written, and a container
/// never exists twice (running and in a checkpoint meant to have stopped it).
extension Engine {
    static let checkpointCompleteMarker = "cryo-complete"
    /// How long a CRIU worker or a monitor still at work on an interrupted operation is waited
    /// for before cryod gives up on it.
    static let interruptedWorkLimit: Double = 300

    func resolveInterrupted(_ id: String) async {
        guard let op = record(id)?.operation else { return }
        switch op.kind {
        case .checkpoint: await resolveInterruptedCheckpoint(id, op)
        case .restore: await resolveInterruptedRestore(id, op)
        case .migrateOut: await resolveInterruptedMigrateOut(id, op)
        case .migrateIn: await resolveInterruptedMigrateIn(id, op)
        case .restoreNew: await resolveInterruptedRestoreNew(id, op)
        case .networkConnect, .networkDisconnect: await resolveInterruptedNetworkChange(id, op)
        }
        endOperation(id)
    }

    /// A checkpoint cryod was killed during. Once its CRIU worker is done: if the images were
    /// marked complete (CRIU reached post-dump, see CheckpointPlan.completionMarker) the
    /// checkpoint is kept and a container the checkpoint was to stop is stopped; otherwise the
    /// half images go and the container runs on. Either way it is thawed and its network
    /// unlocked if it runs.
    func resolveInterruptedCheckpoint(_ id: String, _ op: PendingOperation) async {
        let temp = op.incompleteDirectory
        let target = op.directory
        let rt = runtime
        let netns = paths.netns(id)
        let failedLog = paths.containerDir(id) + "/checkpoint-\(op.checkpoint)-failed.log"
        let leaveRunning = op.leaveRunning ?? false
        let limit = Self.interruptedWorkLimit
        let marker = temp + "/" + Self.checkpointCompleteMarker
        let complete = (try? await blocking {
            FS.exists(marker) || (!FS.exists(temp) && FS.exists(target + "/inventory.img"))
        }) ?? false
        if complete && !leaveRunning { slots[id]?.expectedExit = .checkpoint }
        let outcome: String? = try? await blocking { () -> String in
            // CRIU puts the freezer back as it found it (frozen, by us) when it ends: it must
            // be over before the container is thawed.
            let deadline = Monotonic.now().adding(seconds: limit)
            while let worker = Runtime.checkpointWorker(workDir: temp) {
                if deadline.hasPassed { Glibc.kill(worker, SIGKILL) }
                usleep(20_000)
            }
            let state = try? rt.state(id: id)
            let alive = state.map { $0.status != "stopped" } ?? false
            if complete && !leaveRunning {
                // The container now lives in the checkpoint: its tasks (CRIU may have killed
                // them, frozen ones die once thawed) must not run on beside it.
                if alive { try? rt.kill(id: id, signal: SIGKILL, all: true) }
            } else if alive {
                if FS.exists(netns) { try? NetworkLock.unlock(netnsPath: netns) }
                if state?.status == "paused" { try? rt.resume(id: id) }
            }
            if complete {
                if FS.exists(temp) { try sys(rename(temp, target), "rename", target) }
                return "kept, the container \(leaveRunning ? "runs on" : "stopped")"
            }
            rename(temp + "/dump.log", failedLog)
            try? FS.removeAll(temp)
            return "discarded (incomplete), the container \(alive ? "runs on" : "is gone")"
        }
        note(id, "checkpoint \(op.checkpoint) was interrupted by a cryod crash: \(outcome ?? "could not be resolved")", level: .warning)
    }

    /// A restore cryod was killed during. Its monitor, if alive, is waited for until it has
    /// created the container or failed: a restored container is recorded running with its
    /// pid and watched again; otherwise the start failed (and its leftovers are removed), the
    /// checkpoint untouched.
    func resolveInterruptedRestore(_ id: String, _ op: PendingOperation) async {
        let statePath = paths.monitorState(id)
        let configPath = paths.monitorConfig(id)
        let limit = Self.interruptedWorkLimit
        let state: MonitorState? = try? await blocking { () -> MonitorState? in
            let deadline = Monotonic.now().adding(seconds: limit)
            while !deadline.hasPassed {
                let s = (try? FS.readBytes(statePath)).flatMap { try? JSONDecoder().decode(MonitorState.self, from: Data($0)) }
                if let s, s.ready != nil || !Processes.isAlive(pid: s.monitorPid, startTime: s.monitorStartTime) { return s }
                // A monitor so young that it has not written its state yet is found by its
                // command line (its config path is this container's).
                if s == nil && Self.monitorProcess(configPath: configPath) == nil { return nil }
                usleep(20_000)
            }
            return nil
        }
        if let s = state, let ready = s.ready, ready.error == nil, let initPid = ready.initPid,
           Processes.isAlive(pid: s.monitorPid, startTime: s.monitorStartTime) {
            update(id) { c in
                c.status = .running
                c.pid = initPid
                c.monitorPid = s.monitorPid
                c.monitorStartTime = s.monitorStartTime
                c.startedAt = rfc3339Now()
                c.exitCode = 0
                c.finishedAt = "0001-01-01T00:00:00Z"
                c.error = ""
            }
            note(id, "restore from checkpoint \(op.checkpoint) finished while cryod was down: running, pid \(initPid)")
            return
        }
        let failure = state?.ready?.failure(step: "restoring container from \(op.directory)")
            ?? CryoFailure(.internal, "restoring container from \(op.directory) was interrupted: cryod and the container's monitor stopped before it finished")
        await failedStart(id, failure)
        note(id, failure.description, level: .warning)
    }

    /// An import, clone or fork cryod was killed during: the new container stays if its
    /// restore finished (it runs), else it goes — nothing half made (a record with part of its
    /// files, a restore that never ran) is left to be started later as if it were whole.
    func resolveInterruptedRestoreNew(_ id: String, _ op: PendingOperation) async {
        await resolveInterruptedRestore(id, op)
        guard let c = record(id), !c.isRunning else { return }
        note(id, "\(op.checkpoint) as container \(c.name) was interrupted by cryod's stop before it ran: removed", level: .warning)
        try? await removeNow(id)
    }

    /// A container that is not running by its record but has a live monitor: cryod was
    /// killed while starting it (the monitor had created it, its init waiting for `start`).
    /// It never ran for the user: it goes, with its monitor.
    func stopUnrecordedStart(_ id: String) async {
        let statePath = paths.monitorState(id)
        let state = try? await blocking { () -> MonitorState? in
            guard let bytes = try? FS.readBytes(statePath) else { return nil }
            return try? JSONDecoder().decode(MonitorState.self, from: Data(bytes))
        }
        guard let s = state ?? nil, Processes.isAlive(pid: s.monitorPid, startTime: s.monitorStartTime) else { return }
        let rt = runtime
        let bundle = paths.bundle(id)
        let pid = s.monitorPid
        try? await blocking {
            try rt.discard(id: id, bundle: bundle)
            // Its container gone, the monitor ends by itself; one still setting up is stopped.
            for _ in 0..<250 where Processes.isAlive(pid: pid, startTime: s.monitorStartTime) { usleep(20_000) }
            if Processes.isAlive(pid: pid, startTime: s.monitorStartTime) { Glibc.kill(pid, SIGKILL) }
        }
        await beginNetworkTeardown(id).value
        note(id, "a start interrupted by a cryod crash was undone (monitor \(pid))")
    }

    /// Half-written checkpoints that no operation accounts for (left by a cryod that did not
    /// record its operations yet): nothing is writing them now that cryod starts.
    func removeStrayIncompleteCheckpoints() async {
        let dirs = allRecords.filter { $0.operation == nil }.map { ($0.id, paths.checkpoints($0.id)) }
        let removed = (try? await blocking { () -> [(String, String)] in
            var removed: [(String, String)] = []
            for (id, dir) in dirs {
                for name in (try? FS.listDirectory(dir)) ?? [] where name.hasPrefix(".incomplete-") {
                    if Runtime.checkpointWorker(workDir: dir + "/" + name) != nil { continue }
                    try? FS.removeAll(dir + "/" + name)
                    removed.append((id, name))
                }
            }
            return removed
        }) ?? []
        for (id, name) in removed { note(id, "removed the half-written checkpoint \(name)") }
    }

    /// A process whose command line is `cryo-monitor CONFIG`.
    nonisolated static func monitorProcess(configPath: String) -> pid_t? {
        for name in (try? FS.listDirectory("/proc")) ?? [] {
            guard let pid = pid_t(name), let bytes = try? FS.readBytes("/proc/\(name)/cmdline") else { continue }
            let argv = bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            if argv.count >= 2, argv[0].hasSuffix("cryo-monitor"), argv[1] == configPath { return pid }
        }
        return nil
    }

    /// Removes what a dead monitor left of its container: processes that run on without it
    /// (it was killed) are killed — a container without its monitor has no log, no stdin and
    /// no exit status, and the record says it is not running; a create or restore it never
    /// finished is cleaned up.
    func discardRuntimeLeftovers(_ id: String) async {
        let rt = runtime
        let bundle = paths.bundle(id)
        do {
            try await blocking {
                guard FS.exists(rt.store.dir(id)) else { return }
                try rt.discard(id: id, bundle: bundle)
            }
        } catch {
            note(id, "removing what its monitor left: \(error)", level: .warning)
        }
    }

    /// A line in cryod's log about a container.
    nonisolated func note(_ id: String, _ message: String, level: Logger.Level = .notice) {
        EngineLog.logger.log(level: level, "container \(id.prefix(12)): \(message)")
    }
}
