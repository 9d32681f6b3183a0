import CRIURPC
import CryoCRIU
import CryoLinux
import CryoOCI
import FoundationEssentials
import Glibc

public enum CgroupsMode: String, Sendable {
    case soft, full, strict, ignore

    var criu: criu_cg_mode {
        switch self {
        case .soft: return .soft
        case .full: return .full
        case .strict: return .strict
        case .ignore: return .ignore
        }
    }

    public static func parse(_ s: String?) throws -> CgroupsMode {
        guard let s, !s.isEmpty else { return .soft }
        guard let m = CgroupsMode(rawValue: s) else {
            throw CryoError("invalid --manage-cgroups-mode \"\(s)\": use soft, full, strict or ignore")
        }
        return m
    }
}

public enum NetworkLockMethod: String, Sendable {
    case iptables, nftables, skip
    var criu: criu_network_lock_method {
        switch self {
        case .iptables: return .iptables
        case .nftables: return .nftables
        case .skip: return .skip
        }
    }
    public static func parse(_ s: String?) throws -> NetworkLockMethod? {
        guard let s, !s.isEmpty else { return nil }
        guard let m = NetworkLockMethod(rawValue: s) else {
            throw CryoError("invalid --network-lock \"\(s)\": use iptables, nftables or skip")
        }
        return m
    }
}

/// Options shared by checkpoint and restore (runc's flag names).
public struct CRIUOptions: Sendable {
    public var criuPath = "criu"
    public var imagePath: String
    public var workPath: String?
    public var tcpEstablished = false
    public var extUnixSk = false
    public var shellJob = false
    public var fileLocks = false
    public var cgroupsMode: CgroupsMode = .soft
    public var emptyNetworkNS = false
    public var autoDedup = false
    public var lazyPages = false
    public var networkLock: NetworkLockMethod?
    /// Lock the container's network namespace with cryo's own nft table (NetworkLock) at
    /// CRIU's network-lock/unlock notifications, instead of CRIU's iptables lock. For a
    /// namespace joined by path only (the engine's); a no-op for others.
    public var lockNetworkItself = false
    /// The namespace has nothing but its loopback (the engine's network mode none): nothing
    /// outside it can send it a packet, so it needs no lock at all — CRIU's is skipped and no
    /// nft table is made (each nft run costs ~5 ms, and removing the table waits out an RCU
    /// grace period, ~15 ms of every restore).
    public var networkIsolated = false
    /// Dump with CRIU started inside the container's network namespace (one joined by
    /// path), so that CRIU takes it for its own and leaves it out of the images. Dumping a
    /// namespace, even an external one, walks the whole conntrack table (~12 ms with the
    /// kernel's 262144 buckets) and mounts and drops a sysfs: ~25 ms of a ~55 ms dump. Such
    /// images restore only into a namespace CRIU is started in, which cryo's restore does
    /// whenever the images hold no network namespace; runc would restore them into its own
    /// namespace, so only the engine asks for this and the runtime's CLI keeps runc's format.
    /// The lock (`lockNetworkItself`) is then taken before CRIU is asked to dump, and CRIU
    /// sends no network-lock/unlock notifications.
    public var dumpInsideNetworkNamespace = false
    public init(imagePath: String) { self.imagePath = imagePath }
}

extension Runtime {
    /// The network namespace the spec joins by path, if any. Such a namespace belongs to
    /// whoever made it (CNI, podman, cryod): its links, addresses, routes and firewall rules
    /// are theirs to set up again, so CRIU is told to leave them out (empty_ns), as runc does
    /// — it still dumps and restores the sockets. Dumping them cost ~65 ms of every checkpoint.
    static func networkNamespacePath(_ spec: Spec) -> String? {
        guard let p = spec.linux?.namespaces?.first(where: { $0.type == "network" })?.path, !p.isEmpty else { return nil }
        return p
    }

    /// Whether CRIU dumped a network namespace into `imageDir` (netns-ID.img): not when it
    /// dumped from inside the container's (CRIUOptions.dumpInsideNetworkNamespace).
    static func imagesHoldNetworkNamespace(_ imageDir: String) -> Bool {
        ((try? FS.listDirectory(imageDir)) ?? []).contains { $0.hasPrefix("netns-") && $0.hasSuffix(".img") }
    }
}

extension CRIUOptions {
    /// The request fields checkpoint and restore set alike.
    func apply(to opts: inout criu_opts) {
        opts.notifyScripts = true
        opts.orphanPtsMaster = true
        opts.manageCgroups = true
        opts.manageCgroupsMode = cgroupsMode.criu
        opts.tcpEstablished = tcpEstablished
        opts.extUnixSk = extUnixSk
        opts.shellJob = shellJob
        opts.fileLocks = fileLocks
        opts.autoDedup = autoDedup
        opts.lazyPages = lazyPages
        if let m = networkLock { opts.networkLock = m.criu }
        if lockNetworkItself || networkIsolated { opts.networkLock = .skip }
        if emptyNetworkNS { opts.emptyNs = UInt32(NamespaceKind.network.cloneFlag) }
    }
}

public struct CheckpointOptions: Sendable {
    public var criu: CRIUOptions
    public var leaveRunning = false
    public var preDump = false
    public var parentPath: String?
    public var pageServer: String?
    public var statusFD: Int32?
    /// A file written into the image directory at CRIU's `post-dump` notification: every
    /// image is written and flushed, and CRIU has not yet let the tasks go (nor killed them).
    /// Its presence proves the images complete to whoever finds them after a crash of cryod,
    /// CRIU or the monitor — only then may a checkpoint that stops the container be kept.
    /// Written atomically but not fsync'd, like the images (which CRIU does not fsync): it
    /// guards against processes dying, not against the machine losing power.
    public var completionMarker: String?
    /// An already-connected socket to a CRIU page server (CRIU's `ps.fd`): the pages go
    /// there instead of into the image directory — a migration's stream to the target,
    /// which the caller relays. Inherited by the CRIU worker; the caller keeps and closes it.
    public var pageServerSocket: Int32?
    /// Run at CRIU's `post-dump` notification, after the completion marker: every image is
    /// written (and every page sent), the tasks are still frozen and the network locked.
    /// A throw answers CRIU "failed" — it then unlocks and resumes the tasks — a return lets
    /// the dump finish (the tasks are killed unless leaveRunning). A migration's commit point.
    public var atPostDump: (@Sendable () throws -> Void)?
    /// Asked when the dump failed: true leaves the container frozen and its network locked
    /// (a migration that cannot learn whether the target took over must not let both run).
    public var keepFrozenAfterFailure: (@Sendable () -> Bool)?
    public init(criu: CRIUOptions) { self.criu = criu }
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

    /// Checkpoints a running (or paused) container into opts.imagePath.
    /// On failure the container keeps running and CRIU's reasons are in the error.
    public func checkpoint(id: String, _ o: CheckpointOptions) throws {
        let r = try store.load(id)
        let status = store.status(r)
        guard status == .running || status == .paused else {
            throw RuntimeError.wrongState(id, status, "only a running or paused container can be checkpointed")
        }
        let netnsPath = r.namespacePaths["network"]
        let insideNetns = o.criu.dumpInsideNetworkNamespace && netnsPath != nil && !o.preDump && o.pageServer == nil
        // We lock the namespace (no notification comes when CRIU dumps from inside it).
        let lockNetns = o.criu.lockNetworkItself && !o.criu.networkIsolated ? netnsPath : nil
        // CRIU initialises while we prepare and freeze the container.
        // A page-server socket becomes the worker's fd 4 (after stdio and the RPC socket).
        let worker = try CRIUWorker(criuPath: o.criu.criuPath, extraFDs: o.pageServerSocket.map { [$0] } ?? [],
                                    networkNamespace: insideNetns ? netnsPath : nil)
        try worker.requestVersion()
        Trace.mark("checkpoint: criu swrk started")
        let imageDir = FS.absolute(o.criu.imagePath)
        try FS.mkdirAll(imageDir, mode: 0o700)
        let workDir = FS.absolute(o.criu.workPath ?? imageDir)
        try FS.mkdirAll(workDir, mode: 0o700)
        // An image dir that already holds a checkpoint is overwritten, as runc does
        // (podman reuses <userdata>/checkpoint). CRIU rewrites every image it needs;
        // the old inventory goes first so a failed dump never looks like a good one.
        if !o.preDump { unlink(imageDir + "/inventory.img") }
        // Whoever finds this dump interrupted (a cryod restarted after a crash) must let this
        // worker finish before touching the container: CRIU puts the freezer back as it found it.
        try FS.atomicWrite(workDir + "/" + Self.checkpointWorkerFile,
                           Array("\(worker.pid) \(Processes.startTime(pid: worker.pid) ?? 0)\n".utf8), mode: 0o600, durable: false)
        let imagesFD = try sys(open(imageDir, O_DIRECTORY | O_RDONLY | O_CLOEXEC), "open", imageDir)
        defer { close(imagesFD) }
        let workFD = try sys(open(workDir, O_DIRECTORY | O_RDONLY | O_CLOEXEC), "open", workDir)
        defer { close(workFD) }

        Trace.mark("checkpoint: loaded state")
        if o.preDump || o.parentPath != nil {
            try worker.receiveVersion().checkSupported()
            let f = try worker.features()
            if !f.memTrack {
                throw CryoError("\(o.preDump ? "--pre-dump" : "--parent-path") needs soft-dirty memory tracking, which this kernel lacks (CONFIG_MEM_SOFT_DIRTY is off): take a full checkpoint instead")
            }
        }

        let cgroup = Cgroup(path: r.cgroupPath)
        var opts = criu_opts()
        opts.imagesDirFd = imagesFD
        opts.workDirFd = workFD
        opts.logLevel = 4
        opts.logFile = o.preDump ? "predump.log" : "dump.log"
        opts.pid = r.initPid
        opts.root = r.rootfs
        o.criu.apply(to: &opts)
        opts.leaveRunning = o.leaveRunning || o.preDump
        if let parent = o.parentPath {
            opts.parentImg = parent
            opts.trackMem = true
        }
        if let ps = o.pageServer {
            guard let colon = ps.lastIndex(of: ":"), let port = Int32(ps[ps.index(after: colon)...]) else {
                throw CryoError("--page-server must be ADDRESS:PORT, got \"\(ps)\"")
            }
            var info = criu_page_server_info()
            info.address = String(ps[..<colon])
            info.port = port
            opts.ps = info
        }
        if o.pageServerSocket != nil {
            var info = criu_page_server_info()
            info.fd = 4
            opts.ps = info
        }
        if let freezer = cgroup.freezerDir { opts.freezeCgroup = freezer }
        if o.criu.cgroupsMode != .ignore {
            opts.cgroupYard = try CRIUCgroupYard.ensure(layout: cgroup.layout)
        }
        if !o.preDump {
            for m in CRIUMounts.forDump(spec: r.spec, rootfs: r.rootfs, cgroup: cgroup) {
                var e = ext_mount_map()
                e.key = m.key
                e.val = m.value
                opts.extMnt.append(e)
            }
        }
        for kind in [NamespaceKind.network, .pid] {
            guard let path = r.namespacePaths[kind.rawValue], !(kind == .network && insideNetns) else { continue }
            let ino = try FS.statInode(path).ino
            opts.external.append("\(kind.procName)[\(ino)]:extRoot\(kind == .network ? "Net" : "Pid")NS")
        }
        if netnsPath != nil && !insideNetns { opts.emptyNs |= UInt32(NamespaceKind.network.cloneFlag) }

        // runc's descriptors.json: what fds 0-2 were, so restore can re-plumb them.
        if !o.preDump {
            try FS.atomicWrite(imageDir + "/descriptors.json", Array(try JSONEncoder().encode(r.externalDescriptors)), mode: 0o600, durable: false)
        }

        // Freeze ourselves with fast polling: CRIU's own v1 freezer loop sleeps 100 ms.
        let wasPaused = status == .paused
        if !wasPaused { try cgroup.freeze() }
        Trace.mark("checkpoint: frozen")
        // Undone below wherever the container goes on running.
        func unlockNetwork() { if insideNetns, let p = lockNetns { try? NetworkLock.unlock(netnsPath: p) } }
        /// After a failure: the container runs on as it was (unlocked, thawed unless paused).
        func resumeAfterFailure() {
            if o.keepFrozenAfterFailure?() == true { return }
            unlockNetwork()
            if !wasPaused { try? cgroup.thaw() }
        }
        // CRIU dumps the tree under init only. A process exec'd into the container (its parent
        // is the runtime, outside) is in the container's cgroup but not in that tree: it would
        // be silently left out, and killed or lost with a checkpoint that stops the container.
        // Refused instead, naming it; with the tasks frozen, nothing new can appear meanwhile.
        if !o.preDump {
            let outside = cgroup.pids().filter { Processes.state(pid: $0) != "Z" && !Processes.descends($0, from: r.initPid) }
            if !outside.isEmpty {
                resumeAfterFailure()
                let names = outside.prefix(8).map { pid -> String in
                    let cmd = ((try? FS.readString("/proc/\(pid)/comm")) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
                    return "\(pid) (\(cmd))"
                }.joined(separator: ", ")
                throw CryoError("checkpoint of \(id) refused: process\(outside.count == 1 ? "" : "es") \(names)\(outside.count > 8 ? " and \(outside.count - 8) more" : "") started by exec \(outside.count == 1 ? "is" : "are") not descendants of the container's init, and CRIU dumps only that tree — \(outside.count == 1 ? "it" : "they") would be lost at restore. Let \(outside.count == 1 ? "it" : "them") finish (or kill \(outside.count == 1 ? "it" : "them")) and checkpoint again; the container keeps running")
            }
        }
        if insideNetns, let p = lockNetns {
            do { try NetworkLock.lock(netnsPath: p) } catch {
                resumeAfterFailure()
                throw error
            }
            Trace.mark("checkpoint: network locked")
        }
        FaultPoint.hit("checkpoint-frozen", criu: worker.pid)
        if !(o.preDump || o.parentPath != nil) {
            do {
                let version = try worker.receiveVersion()
                try version.checkSupported()
                Trace.mark("checkpoint: criu version \(version)")
            } catch {
                resumeAfterFailure()
                throw error
            }
        }
        var req = criu_req()
        req.type = o.preDump ? .preDump : .dump
        req.opts = opts
        let resp: criu_resp
        do {
            resp = try worker.call(req) { script, _, _ in
                // network-lock/unlock: CRIU locks the container's namespace itself after the
                // ack (iptables rules inside it) and unlocks it on failure or leave-running —
                // unless cryo does it (lockNetworkItself: CRIU skips its own lock).
                Trace.mark("checkpoint: notification \(script)")
                FaultPoint.hit("checkpoint-notify-\(script)", criu: worker.pid)
                if script == "post-dump", !o.preDump {
                    // Every image is written: their sizes, checked before any restore.
                    try CheckpointImageSizes.record(imageDir: imageDir)
                }
                if script == "post-dump", !o.preDump, let marker = o.completionMarker {
                    // CRIU's commit point: images complete, tasks still frozen. Marked before
                    // the ACK, so after a crash either the tasks live on or the mark is there.
                    try FS.atomicWrite(imageDir + "/" + marker, Array("complete\n".utf8), mode: 0o600, durable: false)
                    FaultPoint.hit("checkpoint-dump-complete", criu: worker.pid)
                }
                if script == "post-dump", !o.preDump, let hook = o.atPostDump { try hook() }
                if !insideNetns, let netns = lockNetns {
                    if script == "network-lock" { try NetworkLock.lock(netnsPath: netns) }
                    if script == "network-unlock" { try NetworkLock.unlock(netnsPath: netns) }
                }
                if script == "status-ready", let fd = o.statusFD {
                    var zero: UInt8 = 0
                    _ = write(fd, &zero, 1)
                    close(fd)
                }
            }
        } catch {
            if let marker = o.completionMarker, FS.exists(imageDir + "/" + marker) {
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
                throw CryoError("checkpoint of \(id) failed: \(error)\n\(CRIULog.excerpt(logPath: workDir + "/" + opts.logFile))")
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
            if let marker = o.completionMarker { unlink(imageDir + "/" + marker) }
            let msg = CRIULog.reason(resp, logPath: workDir + "/" + opts.logFile)
            throw CryoError("checkpoint of \(id) failed: CRIU: \(msg)\n\(CRIULog.excerpt(logPath: workDir + "/" + opts.logFile))")
        }
        if opts.leaveRunning {
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
        try FS.removeAll(store.dir(id))
        Trace.mark("checkpoint: cleaned up")
    }
}
