import CryoLinux
import Glibc

/// Docker's HEALTHCHECK: one monitor task per running container with a health check. It
/// sleeps on the actor's terms (never holding it), runs each probe as an exec in the
/// container (the same path as `docker exec`, so probes take the container's lock to
/// spawn and appear as exec events as in dockerd), and keeps `State.Health` in the record.
extension Engine {
    /// Begins the health monitor of a container that has just begun running (start,
    /// restore, restart, a cryod that found it running): its health starts over as
    /// `starting`. `reset: false` resumes one that was set aside (around a checkpoint) as it was.
    func startHealthMonitor(_ id: String, reset: Bool = true) {
        cancelHealthMonitor(id)
        guard let c = record(id), c.isRunning, let plan = HealthcheckSettings.plan(c.config.Healthcheck) else {
            if reset, record(id)?.health != nil { update(id) { $0.health = nil } }
            return
        }
        if reset || c.health == nil {
            update(id) { $0.health = ContainerHealth(Status: ContainerHealth.starting, FailingStreak: 0, Log: $0.health?.Log ?? []) }
        }
        nextHealthToken += 1
        let token = nextHealthToken
        let task = Task { await self.healthLoop(id, plan: plan, token: token) }
        slots[id]?.health = (token, task)
    }

    /// Stops the monitor without waiting (the container is gone: its probe dies with it).
    func cancelHealthMonitor(_ id: String) {
        slots[id]?.health?.task.cancel()
        slots[id]?.health = nil
    }

    /// Stops the monitor and waits until its probe (if one runs) is killed and over: a
    /// checkpoint must not find a probe's process in the container.
    func stopHealthMonitor(_ id: String) async {
        guard let h = slots[id]?.health else { return }
        cancelHealthMonitor(id)
        await h.task.value
    }

    /// `body` with the container's health monitor set aside (a checkpoint, a migration),
    /// resumed afterwards if the container still runs here.
    func withHealthMonitorPaused<T: Sendable>(_ id: String, _ body: () async throws -> T) async throws -> T {
        let monitored = slots[id]?.health != nil
        await stopHealthMonitor(id)
        func resume() {
            if monitored, record(id)?.isRunning == true, slots[id]?.health == nil { startHealthMonitor(id, reset: false) }
        }
        do {
            let result = try await body()
            resume()
            return result
        } catch {
            resume()
            throw error
        }
    }

    /// The container's run is over: dockerd leaves a stopped container's health
    /// `unhealthy` (a monitor that is not watching vouches for nothing).
    func healthRunEnded(_ id: String) {
        cancelHealthMonitor(id)
        if let h = record(id)?.health, h.Status != ContainerHealth.unhealthy {
            update(id) { $0.health?.Status = ContainerHealth.unhealthy }
        }
    }

    private func isCurrentMonitor(_ id: String, _ token: Int) -> Bool {
        slots[id]?.health?.token == token && !Task.isCancelled
    }

    private func healthLoop(_ id: String, plan: HealthProbePlan, token: Int) async {
        let began = ContinuousClock.now
        func inStartPeriod(_ t: ContinuousClock.Instant) -> Bool { began.duration(to: t) < .nanoseconds(plan.startPeriod) }
        while isCurrentMonitor(id, token) {
            // While starting within the start period: the (shorter) start interval.
            let starting = record(id)?.health?.Status == ContainerHealth.starting && inStartPeriod(.now)
            do { try await Task.sleep(nanoseconds: UInt64(starting ? plan.startInterval : plan.interval)) } catch { return }
            guard isCurrentMonitor(id, token), let c = record(id) else { return }
            guard c.isRunning else { return }
            // A paused container is not probed (its exec would be refused, or run frozen).
            if c.status == .paused { continue }
            let probeStart = ContinuousClock.now
            let pauses = slots[id]?.pauses
            let result = await runHealthProbe(id, plan: plan)
            // A probe cut short by a stop or checkpoint, or frozen by a pause (its timeout may
            // have run out meanwhile), is no verdict on the container.
            guard isCurrentMonitor(id, token), let result, record(id)?.status == .running, slots[id]?.pauses == pauses else { continue }
            var changed: String?
            update(id) { c in
                var h = c.health ?? ContainerHealth()
                changed = h.record(result, inStartPeriod: inStartPeriod(probeStart), retries: plan.retries)
                c.health = h
            }
            if let changed, let c = record(id) { emitContainer("health_status: " + changed, c) }
        }
    }

    /// Runs one probe; nil when it could not be judged (the container stopped running).
    private func runHealthProbe(_ id: String, plan: HealthProbePlan) async -> HealthcheckResult? {
        let start = rfc3339Now()
        var req = ExecCreateRequest()
        req.Cmd = plan.command
        req.AttachStdout = true
        req.AttachStderr = true
        var execID: String?
        defer { if let execID { execs[execID] = nil } }
        let process: ExecProcess
        do {
            execID = try createExec(id, req)
            guard let p = try await startExec(execID!, detach: false, tty: false) else {
                throw EngineError.internalError("the probe's exec was detached")
            }
            process = p
        } catch {
            guard record(id)?.status == .running, !Task.isCancelled else { return nil }
            return HealthcheckResult(Start: start, End: rfc3339Now(), ExitCode: -1, Output: "\(error)")
        }
        let output = HealthProbeOutput()
        let killer = HealthProbeKiller(pid: process.runtimePid, pidfd: process.runtimePidfd)
        defer { killer.close() }
        let timer = Task.detached {
            try await Task.sleep(nanoseconds: UInt64(plan.timeout))
            killer.kill(timedOut: true)
        }
        defer { timer.cancel() }
        let group = self.group
        let code = await withTaskCancellationHandler {
            async let out: Void = PipeRelay.drain(fd: process.stdout, group: group) { output.append($0) }
            async let err: Void = PipeRelay.drain(fd: process.stderr, group: group) { output.append($0) }
            let code = await finishExec(execID!, process: process)
            _ = await (out, err)
            return code
        } onCancel: {
            Task.detached { killer.kill(timedOut: false) }
        }
        if killer.timedOut {
            return HealthcheckResult(Start: start, End: rfc3339Now(), ExitCode: -1,
                                     Output: "Health check exceeded timeout (\(GoDuration.format(plan.timeout)))")
        }
        return HealthcheckResult(Start: start, End: rfc3339Now(), ExitCode: Int(code), Output: output.text)
    }
}
