import CRIURPC
import CShim
import CryoCRIU
import CryoLinux
import CryoOCI
import FoundationEssentials
import Glibc

extension Runtime {
    /// Restores a container from CRIU images as `id`, as `plan` says: cgroups, mountpoints
    /// and the root prepared while CRIU starts, then CRIU's restore, answering its
    /// notifications (hooks, the network gate, the console, the unlock). The restored init is
    /// our child (rst_sibling). A failed restore leaves the images untouched and nothing of the
    /// container behind.
    public func restore(id: String, bundle: String, plan: RestorePlan, io: RestoreIO = RestoreIO()) throws -> (ContainerRecord, pid_t) {
        try ContainerStore.validate(id: id)
        let bundle = FS.absolute(bundle)
        let spec = try Self.loadSpec(bundle: bundle)
        let rootfs = Self.rootfsPath(spec, bundle: bundle)
        guard FS.isDirectory(rootfs) else { throw CryoFailure(.invalidArgument, "rootfs \(rootfs) is not a directory") }
        let imageDir = FS.absolute(plan.imagePath)
        guard FS.exists(imageDir + "/inventory.img") else {
            throw CryoFailure(.invalidArgument, "image path \(imageDir) does not hold a checkpoint (inventory.img is missing)")
        }
        try CheckpointImageSizes.verify(imageDir: imageDir)
        let netnsPath = Self.networkNamespacePath(spec)
        try plan.network.check(joinsNetworkNamespace: netnsPath != nil, what: "restore of \(id)")
        // Images dumped from inside the container's network namespace hold none and restore
        // only into one CRIU is started in; others hold it and get the fresh one as external.
        if netnsPath != nil, plan.network.criuInside == Self.imagesHoldNetworkNamespace(imageDir) {
            throw CryoFailure(.invalidArgument, plan.network.criuInside
                ? "restore of \(id): the plan has CRIU restore from inside the container's network namespace, but the images in \(imageDir) hold a network namespace (they were dumped from outside it)"
                : "restore of \(id): the plan has CRIU restore from outside the container's network namespace, but the images in \(imageDir) hold none (they were dumped from inside it)")
        }
        let dir = try store.makeDir(id)
        let cgroup = Cgroup(path: Self.cgroupPath(spec, id: id))
        let criuRoot = dir + "/criu-root"
        var mounted = false
        // Default work dir: our state dir, so a failed restore writes nothing into the images.
        let workDir = FS.absolute(plan.workPath ?? dir + "/criu-work")
        // Namespaces joined by path are handed to CRIU as inherited fds (4, 5, ...).
        var nsFDs: [(key: String, fd: Int32)] = []
        defer { for ns in nsFDs { close(ns.fd) } }
        // What descends from us, started no earlier than the CRIU worker, and is still there
        // when the restore fails is what CRIU left (see killRestoreLeftovers).
        var workerStarted: UInt64?
        do {
            Trace.mark("restore: spec loaded")
            let joined = (spec.linux?.namespaces ?? []).compactMap { ns in ns.path.map { (type: ns.type, path: $0) } }
            for (key, path) in CRIURequestBuilder.restoreNamespaceKeys(plan, joined: joined) {
                nsFDs.append((key, try sys(open(path, O_RDONLY | O_CLOEXEC), "open", path)))
            }
            // CRIU initialises while we prepare cgroups and the root.
            // The restored tasks inherit CRIU's session keyring (keyrings are not dumped):
            // the worker joins the container's own, as the init of a create does.
            let worker = try CRIUWorker(criuPath: plan.criuPath, extraFDs: nsFDs.map(\.fd),
                                        networkNamespace: plan.network.criuInside ? netnsPath : nil,
                                        sessionKeyring: SessionKeyring.name(container: id))
            workerStarted = Processes.startTime(pid: worker.pid)
            try worker.requestVersion()
            Trace.mark("restore: criu swrk started")
            FaultPoint.hit("restore-criu-started", criu: worker.pid)
            try cgroup.create()
            try cgroup.apply(spec.linux?.resources)
            // In ignore mode CRIU leaves cgroups alone: the worker goes into the
            // container's cgroups so the tasks it forks start there (runc's way).
            // Otherwise CRIU moves the restored tasks itself into the cg_root
            // paths, and moving the worker too would cost a second RCU grace period.
            if plan.cgroupsMode == .ignore { try cgroup.addProcess(worker.pid) }
            Trace.mark("restore: cgroups ready")
            try prepareMountpoints(spec: spec, rootfs: rootfs, cgroup: cgroup)
            // CRIU wants the root to be a mount point whose parent is not overmounted.
            try FS.mkdirAll(criuRoot)
            try Mount.mount(rootfs, criuRoot, type: nil, flags: UInt(MS_BIND | MS_REC))
            mounted = true
            Trace.mark("restore: criu-root mounted")
            defer { if mounted { _ = umount2(criuRoot, Int32(MNT_DETACH)); rmdir(criuRoot) } }
            let (pid, descriptors) = try runCRIURestore(worker, nsFDs: nsFDs, netnsPath: netnsPath, id: id, spec: spec, rootfs: rootfs,
                                                        criuRoot: criuRoot, imageDir: imageDir, workDir: workDir,
                                                        cgroup: cgroup, bundle: bundle, plan, io)
            var nsPaths: [String: String] = [:]
            for ns in spec.linux?.namespaces ?? [] { if let p = ns.path { nsPaths[ns.type] = p } }
            let record = ContainerRecord(
                id: id, bundle: bundle, rootfs: rootfs, initPid: pid, initStartTime: Processes.startTime(pid: pid),
                created: rfc3339Now(), cgroupPath: cgroup.path, namespacePaths: nsPaths,
                externalDescriptors: descriptors, owner: "", spec: spec, restored: true)
            try store.save(record)
            if let pf = io.pidFile { try FS.atomicWrite(FS.absolute(pf), Array("\(pid)".utf8), mode: 0o644, durable: false) }
            Trace.mark("restore: state saved")
            return (record, pid)
        } catch {
            Self.killRestoreLeftovers(cgroup, since: workerStarted)
            cgroup.destroy()
            if mounted { _ = umount2(criuRoot, Int32(MNT_DETACH)) }
            // Keep CRIU's log for the post-mortem; drop the rest of the state dir.
            let log = workDir + "/restore.log"
            let kept = store.root + "/\(id).restore-failed.log"
            let movedLog = plan.workPath == nil && FS.exists(log) && rename(log, kept) == 0
            try? FS.removeAll(dir)
            if movedLog { throw CryoFailure(CryoFailure.Code.of(error), "\(error)".replacing(log, with: kept)) }
            throw error
        }
    }

    /// After a failed restore, everything CRIU left is killed and our children among it
    /// reaped: the tasks in the container's cgroup, and our descendants started since the
    /// CRIU worker (`since`, its start time) — a worker that died mid-restore leaves its
    /// forked, half-restored children behind (the restored root is our child, rst_sibling;
    /// the worker's orphans come to us, a subreaper, in the monitor), and they may not be in
    /// the cgroup yet. Bounded: SIGKILL is not refused to any of them once the cgroup is thawed.
    /// (A start time rather than a list taken beforehand: walking /proc costs milliseconds,
    /// which the path of every restore is spared.)
    static func killRestoreLeftovers(_ cgroup: Cgroup, since: UInt64?) {
        let me = getpid()
        var killed: Set<pid_t> = []
        for _ in 0..<2500 {
            let spawned = since.map { t in Processes.descendants(of: me).filter { (Processes.startTime(pid: $0) ?? 0) >= t } } ?? []
            let left = Set(cgroup.pids()).union(spawned)
            if left.isEmpty { break }
            for p in left { Glibc.kill(p, SIGKILL) }
            killed.formUnion(left)
            try? cgroup.thaw()
            for p in killed {
                var st: Int32 = 0
                _ = waitpid(p, &st, WNOHANG)
            }
            usleep(2000)
        }
        for p in killed {
            var st: Int32 = 0
            _ = waitpid(p, &st, WNOHANG)
        }
    }

    /// Mountpoints CRIU will mount on must exist in the rootfs (a fresh rootfs
    /// copy may lack a file bind target such as /etc/hostname). Mounts inside /proc or
    /// /sys (an engine's binds over masked directories) find theirs in the restored
    /// filesystem, so nothing is made for them in the rootfs. A cgroup holder gets the
    /// hierarchies' mount points (after a reboot it is empty).
    func prepareMountpoints(spec: Spec, rootfs: String, cgroup: Cgroup) throws {
        let kernelFS = (spec.mounts ?? []).filter { $0.type == "proc" || $0.type == "sysfs" }.map { FS.clean($0.destination) }
        for m in spec.mounts ?? [] {
            let clean = FS.clean(m.destination)
            if kernelFS.contains(where: { clean.hasPrefix($0 + "/") }) { continue }
            let dest = try FS.secureJoin(root: rootfs, m.destination)
            if m.isBind, let src = m.source, FS.exists(src), !FS.isDirectory(src) {
                try FS.touch(dest)
            } else if m.type != "cgroup" && m.type != "cgroup2" {
                try FS.mkdirAll(dest)
            }
        }
        try RootfsBuilder.populateCgroupHolder(spec, cgroup.layout)
    }

    private func runCRIURestore(_ worker: CRIUWorker, nsFDs: [(key: String, fd: Int32)], netnsPath: String?, id: String, spec: Spec, rootfs: String,
                                criuRoot: String, imageDir: String, workDir: String, cgroup: Cgroup, bundle: String,
                                _ plan: RestorePlan, _ io: RestoreIO) throws -> (pid_t, [String]) {
        try FS.mkdirAll(workDir, mode: 0o700)
        let imagesFD = try sys(open(imageDir, O_DIRECTORY | O_RDONLY | O_CLOEXEC), "open", imageDir)
        defer { close(imagesFD) }
        let workFD = try sys(open(workDir, O_DIRECTORY | O_RDONLY | O_CLOEXEC), "open", workDir)
        defer { close(workFD) }

        let version = try worker.receiveVersion()
        try version.checkSupported()
        Trace.mark("restore: criu version \(version)")

        let target = CRIURequestBuilder.RestoreTarget(
            imagesDirFD: imagesFD, workDirFD: workFD, criuRoot: criuRoot, joinsNetworkNamespace: netnsPath != nil,
            inherited: nsFDs.enumerated().map { ($1.key, Int32(4 + $0)) }
                + CRIURequestBuilder.stdioInherits(descriptors: readDescriptors(imageDir)),
            externalMounts: CRIUMounts.forRestore(spec: spec, rootfs: rootfs, cgroup: cgroup),
            cgroupRoots: cgroup.roots,
            cgroupYard: plan.cgroupsMode != .ignore ? try CRIUCgroupYard.ensure(layout: cgroup.layout) : nil)
        let req = try CRIURequestBuilder.restore(plan, target)
        var restoredPid: pid_t = -1
        let hookState = { (pid: pid_t) in
            HookState(ociVersion: spec.ociVersion, id: id, status: "creating", pid: pid, bundle: bundle, annotations: spec.annotations)
        }
        // Held once, at the first of these: post-setup-namespaces precedes the sockets' restore;
        // post-restore is the fallback for a restore without namespaces (no such notification).
        var networkAwaited = plan.networkGateFD == nil
        func awaitNetwork(at script: String) throws {
            guard !networkAwaited, let fd = plan.networkGateFD else { return }
            networkAwaited = true
            Trace.mark("restore: \(script): waiting for the network")
            let outcome = try ReadyGate.wait(fd, timeoutMs: plan.networkGateTimeoutMs)
            Trace.mark("restore: \(script): network \(outcome)")
            switch outcome {
            case .opened: return
            case .failed:
                throw CryoFailure(.internal, "the container's network could not be attached (the engine gave up); restore stopped at CRIU's \(script) notification")
            case .timedOut:
                throw CryoFailure(.internal, "timed out after \(plan.networkGateTimeoutMs / 1000) s waiting for the container's network at CRIU's \(script) notification")
            }
        }
        let unlockAt = plan.cryoUnlockNotification
        let resp: criu_resp
        do {
            resp = try worker.call(req) { script, pid, fd in
                FaultPoint.hit("restore-notify-\(script)", criu: worker.pid)
                switch script {
                case "post-setup-namespaces":
                    try awaitNetwork(at: script)
                case "setup-namespaces":
                    try Hooks.runAll(spec.hooks?.prestart, kind: "prestart", state: hookState(pid))
                    try Hooks.runAll(spec.hooks?.createRuntime, kind: "createRuntime", state: hookState(pid))
                case "post-restore":
                    try awaitNetwork(at: script)
                    restoredPid = pid
                case "orphan-pts-master":
                    guard let cs = io.consoleSocket else {
                        throw CryoFailure(.invalidArgument, "the checkpoint has a terminal: restore needs --console-socket")
                    }
                    let s = try connectUnixStream(path: cs)
                    defer { close(s) }
                    let r = Array("/dev/ptmx".utf8).withUnsafeBytes { p in cryo_send_fd(s, fd, p.baseAddress, p.count) }
                    if r < 0 { throw SyscallError("sendmsg(console master)", cs) }
                case _ where script == unlockAt:
                    // Right before the restored tasks run: the lock the engine put on the fresh
                    // namespace (NetworkLock) goes; with CRIU's own lock, CRIU removes it. A
                    // CRIU inside the namespace sends no network-unlock: pre-resume comes next.
                    if let netns = netnsPath { try NetworkLock.unlock(netnsPath: netns) }
                    Trace.mark("restore: notification \(script)")
                default:
                    Trace.mark("restore: notification \(script)")
                }
            }
        } catch {
            throw CryoFailure(.internal, "restore of \(id) failed: \(error)\n\(CRIULog.excerpt(logPath: workDir + "/restore.log"))")
        }
        Trace.mark("restore: criu restore done")
        worker.finish()
        Trace.mark("restore: criu exited")
        guard resp.success else {
            let msg = CRIULog.reason(resp, logPath: workDir + "/restore.log")
            throw CryoFailure(.internal, "restore of \(id) failed: CRIU: \(msg)\n\(CRIULog.excerpt(logPath: workDir + "/restore.log"))")
        }
        let pid = resp.restore.pid > 0 ? resp.restore.pid : restoredPid
        // The next checkpoint must record the new stdio, not the old one.
        let now = (0...2).map { FS.readlink("/proc/\(pid)/fd/\($0)") ?? "/dev/null" }
        return (pid, now)
    }

    func readDescriptors(_ imageDir: String) -> [String] {
        guard let bytes = try? FS.readBytes(imageDir + "/descriptors.json"),
              let list = try? JSONDecoder().decode([String].self, from: Data(bytes)) else { return [] }
        return list
    }
}
