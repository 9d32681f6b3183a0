import CryoLinux

/// Restart policies (`--restart`), as dockerd applies them: an exit of the container's own
/// restarts it after the back-off; a stop, kill or removal through the API, a checkpoint, a
/// migration or the restart verb never does (`RestartPolicyDecision` decides; the record's
/// `stopCause` and the slot's `expectedExit` say what was on purpose). Restarts take the
/// container lock like every verb.
extension Engine {
    /// Called once the container is recorded exited, for an exit the engine did not cause:
    /// schedules its restart when the policy says so (the record says `restarting` meanwhile).
    func scheduleRestartByPolicy(_ id: String) {
        guard !recovering, !shuttingDown, let c = record(id), c.status == .exited, slots[id]?.pendingRestart == nil else { return }
        let policy = RestartPolicyDecision.stored(c.hostConfig.RestartPolicy)
        guard RestartPolicyDecision.restartsAfterExit(policy, exitCode: c.exitCode, restarts: c.restartCount,
                                                      stoppedOnPurpose: c.stopCause != nil) else { return }
        let ran = slots[id]?.runningSince?.elapsedSeconds ?? 0
        guard let delay = slots[id]?.backoff.next(ranSeconds: ran) else { return }
        nextRestartToken += 1
        let token = nextRestartToken
        update(id) {
            $0.status = .restarting
            $0.restartCount += 1
        }
        let task = Task {
            try? await Task.sleep(nanoseconds: UInt64(delay) * 1_000_000)
            await self.restartByPolicy(id, token: token)
        }
        slots[id]?.pendingRestart = (token, task)
        EngineLog.logger.info("container \(c.name) exited with \(c.exitCode): restarting it by its policy in \(delay) ms (restart \(c.restartCount + 1))")
    }

    /// The back-off is over: start the container, unless the restart was cancelled meanwhile.
    /// A start that fails leaves it exited with the error, as dockerd does.
    func restartByPolicy(_ id: String, token: Int) async {
        guard !Task.isCancelled, !shuttingDown, slots[id]?.pendingRestart?.token == token else { return }
        do {
            try await withLock(id) {
                guard !shuttingDown, slots[id]?.pendingRestart?.token == token, record(id)?.status == .restarting else { return }
                slots[id]?.pendingRestart = nil
                try await startLocked(id, ref: id, checkpoint: nil, checkpointDir: nil)
            }
        } catch {
            EngineLog.logger.warning("restarting container \(id.prefix(12)) by its restart policy failed: \(error)")
        }
    }

    /// Drops a restart waiting out its back-off; a container still `restarting` is exited
    /// again (with the code of its last exit). Under the container's lock.
    func cancelPendingRestart(_ id: String) {
        if let pending = slots[id]?.pendingRestart {
            pending.task.cancel()
            slots[id]?.pendingRestart = nil
        }
        if record(id)?.status == .restarting { update(id) { $0.status = .exited } }
    }

    /// A stop, kill or removal through the API: no restart by policy follows the exit, and
    /// `unless-stopped`/`on-failure` stay stopped when cryod starts again.
    func markStoppedByUser(_ id: String) {
        if record(id)?.stopCause != .api { update(id) { $0.stopCause = .api } }
    }

    /// After recovery: containers whose policy brings them back when the daemon starts —
    /// `always` ones, and `unless-stopped`/`on-failure` ones nothing stopped on purpose (they
    /// were running when cryod or the machine went down). Started in the background, each
    /// under its lock, while the API serves; ids of those begun are returned.
    @discardableResult
    public func startByRestartPolicy() -> [String] {
        var ids: [String] = []
        for c in allRecords.sorted(by: { $0.created < $1.created })
        where c.status == .exited && c.restoreOnStart == nil && c.operation == nil {
            let policy = RestartPolicyDecision.stored(c.hostConfig.RestartPolicy)
            guard RestartPolicyDecision.startsWithDaemon(policy, exitCode: c.exitCode, restarts: c.restartCount, stop: c.stopCause,
                                                        everStarted: c.startedAt != "0001-01-01T00:00:00Z") else { continue }
            ids.append(c.id)
        }
        guard !ids.isEmpty else { return [] }
        Task {
            for id in ids { await self.startWithDaemon(id) }
        }
        return ids
    }

    func startWithDaemon(_ id: String) async {
        guard !shuttingDown else { return }
        do {
            try await withLock(id) {
                // Read again under the lock: a request may have started or removed it meanwhile.
                guard !shuttingDown, let c = record(id), c.status == .exited else { return }
                EngineLog.logger.info("starting container \(c.name) by its restart policy \(c.hostConfig.RestartPolicy?.Name ?? "no") (cryod started)")
                update(id) { $0.restartCount += 1 }
                try await startLocked(id, ref: id, checkpoint: nil, checkpointDir: nil)
            }
        } catch {
            EngineLog.logger.warning("starting container \(id.prefix(12)) by its restart policy at cryod's start failed: \(error)")
        }
    }

    /// A manual start (or restore): the back-off and the count begin again, as in dockerd.
    func resetRestartPolicyState(_ id: String) {
        cancelPendingRestart(id)
        slots[id]?.backoff = RestartPolicyDecision.Backoff()
        if record(id)?.restartCount != 0 { update(id) { $0.restartCount = 0 } }
    }
}
