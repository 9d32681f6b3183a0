import CRIURPC
import CryoCRIU
import CryoLinux
import CryoOCI
import FoundationEssentials
import Glibc

extension Runtime {
    /// The network namespace the spec joins by path, if any. Such a namespace belongs to
    /// whoever made it (CNI, podman, cryod): see `NetworkHandling.criuInside`.
    public static func networkNamespacePath(_ spec: Spec) -> String? {
        guard let p = spec.linux?.namespaces?.first(where: { $0.type == "network" })?.path, !p.isEmpty else { return nil }
        return p
    }

    /// Whether CRIU dumped a network namespace into `imageDir` (netns-ID.img): not when it
    /// dumped from inside the container's (`NetworkHandling.criuInside`).
    public static func imagesHoldNetworkNamespace(_ imageDir: String) -> Bool {
        ((try? FS.listDirectory(imageDir)) ?? []).contains { $0.hasPrefix("netns-") && $0.hasSuffix(".img") }
    }
}

extension Runtime {
    /// In a checkpoint's work directory: "PID STARTTIME" of its CRIU worker.
    public static let checkpointWorkerFile = "criu-worker.pid"

    /// The CRIU worker of a checkpoint whose work directory is `workDir`, if it still runs.
    public static func checkpointWorker(workDir: String) -> pid_t? {
        guard let text = try? FS.readString(workDir + "/" + checkpointWorkerFile) else { return nil }
        let f = text.split(separator: " ").map { $0.trimmed }
        guard f.count == 2, let pid = pid_t(f[0]), let st = UInt64(f[1]) else { return nil }
        return Processes.isAlive(pid: pid, startTime: st == 0 ? nil : st) ? pid : nil
    }

    /// Checkpoints a running (or paused) container as `plan` says: the freeze, the lock, the
    /// dump, and afterwards the thaw and unlock (the container goes on) or the clean-up (it
    /// stopped). On failure the container keeps running and CRIU's reasons are in the error.
    public func checkpoint(id: String, plan: CheckpointPlan, hooks: CheckpointHooks = CheckpointHooks()) throws {
        let r = try store.load(id)
        let status = store.status(r)
        guard status == .running || status == .paused else {
            throw RuntimeError.wrongState(id, status, "only a running or paused container can be checkpointed")
        }
        let netnsPath = r.namespacePaths["network"]
        try plan.network.check(joinsNetworkNamespace: netnsPath != nil, what: "checkpoint of \(id)")
        Trace.mark("checkpoint: state loaded, starting criu")
        // CRIU initialises while we prepare and freeze the container.
        // A page-server socket becomes the worker's fd 4 (after stdio and the RPC socket).
        let worker = try CRIUWorker(criuPath: plan.criuPath, extraFDs: CRIURequestBuilder.dumpWorkerFDs(plan),
                                    networkNamespace: plan.network.criuInside ? netnsPath : nil)
        try worker.requestVersion()
        Trace.mark("checkpoint: criu swrk started")
        let imageDir = FS.absolute(plan.imagePath)
        try FS.mkdirAll(imageDir, mode: 0o700)
        let workDir = FS.absolute(plan.workPath ?? imageDir)
        try FS.mkdirAll(workDir, mode: 0o700)
        let logPath = workDir + "/" + CRIURequestBuilder.dumpLogFile(plan)
        // An image dir that already holds a checkpoint is overwritten, as runc does
        // (podman reuses <userdata>/checkpoint). CRIU rewrites every image it needs;
        // the old inventory goes first so a failed dump never looks like a good one.
        if !plan.preDump { unlink(imageDir + "/inventory.img") }
        // Whoever finds this dump interrupted (a cryod restarted after a crash) must let this
        // worker finish before touching the container: CRIU puts the freezer back as it found it.
        try FS.atomicWrite(workDir + "/" + Self.checkpointWorkerFile,
                           Array("\(worker.pid) \(Processes.startTime(pid: worker.pid) ?? 0)\n".utf8), mode: 0o600, durable: false)
        let imagesFD = try sys(open(imageDir, O_DIRECTORY | O_RDONLY | O_CLOEXEC), "open", imageDir)
        defer { close(imagesFD) }
        let workFD = try sys(open(workDir, O_DIRECTORY | O_RDONLY | O_CLOEXEC), "open", workDir)
        defer { close(workFD) }

        Trace.mark("checkpoint: loaded state")
        if plan.preDump || plan.parentPath != nil {
            try worker.receiveVersion().checkSupported()
            let f = try worker.features()
            if !f.memTrack {
                throw CryoFailure(.unsupported, "\(plan.preDump ? "--pre-dump" : "--parent-path") needs soft-dirty memory tracking, which this kernel lacks (CONFIG_MEM_SOFT_DIRTY is off): take a full checkpoint instead")
            }
        }

        let cgroup = Cgroup(path: r.cgroupPath)
        let target = CRIURequestBuilder.DumpTarget(
            initPid: r.initPid, rootfs: r.rootfs, imagesDirFD: imagesFD, workDirFD: workFD,
            networkNamespaceInode: try netnsPath.map { try FS.statInode($0).ino },
            pidNamespaceInode: try r.namespacePaths[NamespaceKind.pid.rawValue].map { try FS.statInode($0).ino },
            freezerDir: cgroup.freezerDir,
            cgroupYard: plan.cgroupsMode != .ignore ? try CRIUCgroupYard.ensure(layout: cgroup.layout) : nil,
            externalMounts: plan.preDump ? [] : CRIUMounts.forDump(spec: r.spec, rootfs: r.rootfs, cgroup: cgroup))
        let req = try CRIURequestBuilder.dump(plan, target)

        // runc's descriptors.json: what fds 0-2 were, so restore can re-plumb them.
        if !plan.preDump {
            try FS.atomicWrite(imageDir + "/descriptors.json", Array(try JSONEncoder().encode(r.externalDescriptors)), mode: 0o600, durable: false)
        }

        // Freeze ourselves with fast polling: CRIU's own v1 freezer loop sleeps 100 ms.
        let wasPaused = status == .paused
        if !wasPaused { try cgroup.freeze() }
        Trace.mark("checkpoint: frozen")
        // The lock cryo took before the dump; undone wherever the container goes on running.
        let lockedBeforeDump = plan.cryoLocksBeforeDump ? netnsPath : nil
        func unlockNetwork() { if let p = lockedBeforeDump { try? NetworkLock.unlock(netnsPath: p) } }
        /// After a failure: the container runs on as it was (unlocked, thawed unless paused).
        func resumeAfterFailure() {
            if hooks.keepFrozenAfterFailure?() == true { return }
            unlockNetwork()
            if !wasPaused { try? cgroup.thaw() }
        }
        // CRIU dumps the tree under init only. A process exec'd into the container (its parent
        // is the runtime, outside) is in the container's cgroup but not in that tree: it would
        // be silently left out, and killed or lost with a checkpoint that stops the container.
        // Refused instead, naming it; with the tasks frozen, nothing new can appear meanwhile.
        if !plan.preDump {
            let outside = cgroup.pids().filter { Processes.state(pid: $0) != "Z" && !Processes.descends($0, from: r.initPid) }
            if !outside.isEmpty {
                resumeAfterFailure()
                let names = outside.prefix(8).map { pid -> String in
                    let cmd = ((try? FS.readString("/proc/\(pid)/comm")) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
                    return "\(pid) (\(cmd))"
                }.joined(separator: ", ")
                throw CryoFailure(.internal, "checkpoint of \(id) refused: process\(outside.count == 1 ? "" : "es") \(names)\(outside.count > 8 ? " and \(outside.count - 8) more" : "") started by exec \(outside.count == 1 ? "is" : "are") not descendants of the container's init, and CRIU dumps only that tree — \(outside.count == 1 ? "it" : "they") would be lost at restore. Let \(outside.count == 1 ? "it" : "them") finish (or kill \(outside.count == 1 ? "it" : "them")) and checkpoint again; the container keeps running")
            }
        }
        if let p = lockedBeforeDump {
            do { try NetworkLock.lock(netnsPath: p, loopbackPort: plan.lazyPort.map { UInt16(truncatingIfNeeded: $0) }) } catch {
                resumeAfterFailure()
                throw error
            }
            Trace.mark("checkpoint: network locked")
        }
        FaultPoint.hit("checkpoint-frozen", criu: worker.pid)
        if !(plan.preDump || plan.parentPath != nil) {
            do {
                let version = try worker.receiveVersion()
                try version.checkSupported()
                Trace.mark("checkpoint: criu version \(version)")
            } catch {
                resumeAfterFailure()
                throw error
            }
        }
        let lockedAtNotification = plan.cryoLocksAtNotification ? netnsPath : nil
        let resp: criu_resp
        do {
            resp = try worker.call(req) { script, _, _ in
                // network-lock/unlock: CRIU locks the container's namespace itself after the
                // ack and unlocks it on failure or leave-running — unless cryo does.
                Trace.mark("checkpoint: notification \(script)")
                FaultPoint.hit("checkpoint-notify-\(script)", criu: worker.pid)
                if script == "post-dump", !plan.preDump {
                    // Every image is written: their sizes, checked before any restore.
                    try CheckpointImageSizes.record(imageDir: imageDir)
                }
                if script == "post-dump", !plan.preDump, let marker = plan.completionMarker {
                    // CRIU's commit point: images complete, tasks still frozen. Marked before
                    // the ACK, so after a crash either the tasks live on or the mark is there.
                    try FS.atomicWrite(imageDir + "/" + marker, Array("complete\n".utf8), mode: 0o600, durable: false)
                    FaultPoint.hit("checkpoint-dump-complete", criu: worker.pid)
                }
                if script == "post-dump", !plan.preDump, let hook = hooks.atPostDump {
                    do { try hook() } catch {
                        // CRIU resumes the tasks at the NACK: the images must not pass for a
                        // complete checkpoint, now or for a cryod recovering after a crash.
                        if let marker = plan.completionMarker { unlink(imageDir + "/" + marker) }
                        throw error
                    }
                }
                if let netns = lockedAtNotification {
                    if script == "network-lock" { try NetworkLock.lock(netnsPath: netns, loopbackPort: plan.lazyPort.map { UInt16(truncatingIfNeeded: $0) }) }
                    if script == "network-unlock" { try NetworkLock.unlock(netnsPath: netns) }
                }
                if script == "status-ready", let fd = plan.statusFD {
                    var zero: UInt8 = 0
                    _ = write(fd, &zero, 1)
                    close(fd)
                }
            }
        } catch {
            if let marker = plan.completionMarker, FS.exists(imageDir + "/" + marker) {
                // CRIU went away after its commit point: the images are complete, so the
                // checkpoint stands and the container goes on as asked — what a cryod
                // restarted after a crash at this point would also decide.
                Trace.mark("checkpoint: criu gone after post-dump (\(error)): images complete")
                var done = criu_resp()
                done.success = true
                resp = done
            } else {
                resumeAfterFailure()
                unlink(imageDir + "/inventory.img")
                throw CryoFailure(.internal, "checkpoint of \(id) failed: \(error)\n\(CRIULog.excerpt(logPath: logPath))")
            }
        }
        Trace.mark("checkpoint: criu dump done")
        FaultPoint.hit("checkpoint-dumped", criu: worker.pid)
        worker.finish()
        unlink(workDir + "/" + Self.checkpointWorkerFile)
        Trace.mark("checkpoint: criu exited")
        guard resp.success else {
            resumeAfterFailure()
            // A failed dump leaves no half checkpoint that could be mistaken for a good one.
            unlink(imageDir + "/inventory.img")
            if let marker = plan.completionMarker { unlink(imageDir + "/" + marker) }
            let msg = CRIULog.reason(resp, logPath: logPath)
            throw CryoFailure(.internal, "checkpoint of \(id) failed: CRIU: \(msg)\n\(CRIULog.excerpt(logPath: logPath))")
        }
        if plan.tasksKeepRunning {
            unlockNetwork()
            if !wasPaused { try cgroup.thaw() }
            return
        }
        // CRIU killed the tasks; frozen tasks only die once thawed. Then the
        // container is gone, like runc: its id can be restored again.
        try? cgroup.thaw()
        try? killAll(r, cgroup)
        Trace.mark("checkpoint: tasks gone")
        cgroup.destroy()
        // The images are whole and the tasks gone: a failure to tidy up the state (which the
        // monitor removes at the same time) must not turn a good checkpoint into a failed one.
        do { try FS.removeAll(store.dir(id)) } catch {
            RuntimeLog.logger.warning("checkpoint of \(id): removing its runtime state: \(error)")
        }
        Trace.mark("checkpoint: cleaned up")
    }
}
