import CShim
import CryoLinux
import CryoOCI
import FoundationEssentials
import Glibc

public struct CreateOptions: Sendable {
    public var bundle: String
    public var pidFile: String?
    public var consoleSocket: String?
    public var noPivot = false
    public var preserveFDs: Int32 = 0
    public init(bundle: String) { self.bundle = bundle }
}

/// The runtime: container lifecycle over a state root (runc's libcontainer role).
public struct Runtime: Sendable {
    public let store: ContainerStore

    public init(root: String) {
        store = ContainerStore(root: root)
    }

    // MARK: create

    public static func loadSpec(bundle: String) throws -> Spec {
        let path = bundle + "/config.json"
        guard FS.exists(path) else { throw CryoFailure(.invalidArgument, "bundle \(bundle): config.json not found") }
        let spec: Spec
        do {
            spec = try JSONDecoder().decode(Spec.self, from: Data(try FS.readBytes(path)))
        } catch let e as DecodingError {
            throw CryoFailure(.invalidArgument, "bundle \(bundle): config.json is not a valid OCI spec: \(describe(e))")
        }
        guard spec.process != nil else { throw CryoFailure(.invalidArgument, "config.json: process is required") }
        guard spec.root != nil else { throw CryoFailure(.invalidArgument, "config.json: root is required") }
        if (spec.linux?.namespaces ?? []).contains(where: { $0.type == "user" }) {
            throw CryoFailure(.unsupported, "config.json: user namespaces are not supported by cryo-runtime yet")
        }
        if let p = spec.linux?.cgroupsPath, p.contains(":") {
            throw CryoFailure(.unsupported, "config.json: systemd cgroup paths (\(p)) are not supported; use the cgroupfs form /parent/name")
        }
        return spec
    }

    static func rootfsPath(_ spec: Spec, bundle: String) -> String {
        let p = spec.root?.path ?? "rootfs"
        return p.hasPrefix("/") ? FS.clean(p) : FS.clean(bundle + "/" + p)
    }

    static func cgroupPath(_ spec: Spec, id: String) -> String {
        spec.linux?.cgroupsPath ?? "/cryo/\(id)"
    }

    /// Creates the container: init runs in its namespaces and waits on exec.fifo.
    /// Returns the record and the init process (our child until we exit).
    @discardableResult
    public func create(id: String, _ o: CreateOptions) throws -> (ContainerRecord, SpawnedProcess) {
        try ContainerStore.validate(id: id)
        let bundle = FS.absolute(o.bundle)
        let spec = try Self.loadSpec(bundle: bundle)
        Trace.mark("create: spec loaded")
        let rootfs = Self.rootfsPath(spec, bundle: bundle)
        guard FS.isDirectory(rootfs) else { throw CryoFailure(.invalidArgument, "rootfs \(rootfs) is not a directory") }
        let dir = try store.makeDir(id)
        let cgroup = Cgroup(path: Self.cgroupPath(spec, id: id))
        var initProcess: SpawnedProcess?
        do {
            // The v1 cgroups and the limits are made while the init process boots (it needs
            // them only once it reads its config).
            try cgroup.createUnified()
            let (record, p) = try startInit(id: id, spec: spec, bundle: bundle, rootfs: rootfs, cgroup: cgroup, o, started: &initProcess) {
                try cgroup.createV1()
                try cgroup.apply(spec.linux?.resources)
                Trace.mark("create: cgroups ready")
            }
            try store.save(record)
            try store.saveStartHint(record)
            if let pf = o.pidFile { try FS.atomicWrite(FS.absolute(pf), Array("\(p.pid)".utf8), mode: 0o644, durable: false) }
            return (record, p)
        } catch {
            if let p = initProcess {
                Glibc.kill(p.pid, SIGKILL)
                _ = try? Spawn.wait(pid: p.pid)
            }
            cgroup.destroy()
            try? FS.removeAll(dir)
            throw error
        }
    }

    private func startInit(id: String, spec: Spec, bundle: String, rootfs: String, cgroup: Cgroup,
                           _ o: CreateOptions, started: inout SpawnedProcess?,
                           whileInitBoots: () throws -> Void) throws -> (ContainerRecord, SpawnedProcess) {
        let fifoPath = store.fifoPath(id)
        try sys(mkfifo(fifoPath, 0o622), "mkfifo", fifoPath)
        let fifo = try sys(open(fifoPath, CRYO_O_PATH | O_CLOEXEC), "open", fifoPath)
        defer { close(fifo) }
        let (parentSock, childSock) = try PacketSocket.pair()
        defer { parentSock.close() }
        var console: Int32 = -1
        if spec.process?.terminal == true {
            guard let cs = o.consoleSocket else {
                childSock.close()
                throw CryoFailure(.invalidArgument, "process.terminal is true: --console-socket is required (cryo-runtime does not allocate a terminal itself)")
            }
            console = try connectUnixStream(path: cs)
        }
        defer { if console >= 0 { close(console) } }

        var cloneFlags: UInt64 = 0
        var joins: [Spec.Namespace] = []
        var nsPaths: [String: String] = [:]
        var newCgroupNS = false
        for ns in spec.linux?.namespaces ?? [] {
            guard let kind = NamespaceKind(rawValue: ns.type) else { throw CryoFailure(.invalidArgument, "config.json: unknown namespace type \"\(ns.type)\"") }
            if let path = ns.path, !path.isEmpty {
                nsPaths[ns.type] = path
                if kind == .pid {
                    // pid namespaces apply to children: switch ours before clone3.
                    let fd = try sys(open(path, O_RDONLY | O_CLOEXEC), "open", path)
                    defer { close(fd) }
                    try sys(cryo_setns(fd, kind.cloneFlag), "setns(pid)", path)
                } else {
                    joins.append(ns)
                }
            } else if kind == .cgroup {
                newCgroupNS = true
            } else {
                cloneFlags |= UInt64(kind.cloneFlag)
            }
        }

        let n = o.preserveFDs
        var fds: [Int32] = [0, 1, 2]
        for i in 0..<n { fds.append(3 + i) }
        fds.append(childSock.fd)
        fds.append(fifo)
        if console >= 0 { fds.append(console) }
        let exe = try Spawn.openSelfExe()
        defer { close(exe) }
        // Born in its v2 cgroup when the kernel can (5.7+); otherwise placed below.
        var bornInCgroup = false
        var spawned: SpawnedProcess?
        if let u = cgroup.unifiedDir {
            let cgfd = open(u, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if cgfd >= 0 {
                spawned = try? Spawn.spawn(path: "/proc/self/exe", exeFD: exe, args: ["cryo-runtime", "init", "\(3 + n)"],
                                           env: Trace.childEnvironment, fds: fds, cloneFlags: cloneFlags, cgroupFD: cgfd)
                bornInCgroup = spawned != nil
                close(cgfd)
            }
        }
        let p = try spawned ?? Spawn.spawn(path: "/proc/self/exe", exeFD: exe, args: ["cryo-runtime", "init", "\(3 + n)"],
                                           env: Trace.childEnvironment, fds: fds, cloneFlags: cloneFlags)
        started = p
        Trace.mark("create: init spawned")
        childSock.close()
        if p.pidfd >= 0 { close(p.pidfd) }

        try whileInitBoots()
        var config = InitConfig(mode: .create, id: id, bundle: bundle, rootfs: rootfs, spec: spec)
        config.joinNamespaces = joins
        config.newCgroupNamespace = newCgroupNS
        config.cgroupPath = cgroup.path
        config.selfPlaceTasksFiles = cgroup.v1TasksFiles
        config.awaitPlaced = cgroup.unifiedDir != nil && !bornInCgroup
        config.fifoFD = 4 + n
        config.consoleFD = console >= 0 ? 5 + n : -1
        config.noPivot = o.noPivot
        config.preserveFDs = n
        config.seccompProgram = try spec.linux?.seccomp.flatMap { try SeccompCache.program(for: $0, root: store.root) }
            .map { Data($0).base64EncodedString() }
        try parentSock.sendJSON(config)
        Trace.mark("create: config sent")
        // The init places itself in the v1 hierarchies. Only when clone3 could not put it
        // in its v2 cgroup does the runtime move it there: that waits for an RCU grace
        // period, so the init does its mounts meanwhile and waits for `placed` only
        // before it needs the cgroup (its cgroup namespace).
        if config.awaitPlaced {
            try cgroup.addProcessToUnified(p.pid)
            try parentSock.sendJSON(InitMessage(.placed))
            Trace.mark("create: init placed in the v2 cgroup")
        }

        let hookState = HookState(ociVersion: spec.ociVersion, id: id, status: "creating", pid: p.pid, bundle: bundle, annotations: spec.annotations)
        loop: while true {
            guard let m = try parentSock.receiveJSON(InitMessage.self) else {
                throw CryoFailure(.internal, "container init (pid \(p.pid)) exited during setup")
            }
            switch m.kind {
            case .hooks:
                try Hooks.runAll(spec.hooks?.prestart, kind: "prestart", state: hookState)
                try Hooks.runAll(spec.hooks?.createRuntime, kind: "createRuntime", state: hookState)
                try parentSock.sendJSON(InitMessage(.go))
            case .ready:
                Trace.mark("create: init ready")
                break loop
            case .error:
                throw m.failure(step: "container init")
            case .go, .placed:
                throw CryoFailure(.internal, "container init: unexpected message")
            }
        }
        let record = ContainerRecord(
            id: id, bundle: bundle, rootfs: rootfs, initPid: p.pid, initStartTime: Processes.startTime(pid: p.pid),
            created: rfc3339Now(), cgroupPath: cgroup.path, namespacePaths: nsPaths,
            externalDescriptors: (0...2).map { FS.readlink("/proc/\(p.pid)/fd/\($0)") ?? "/dev/null" },
            owner: "", spec: spec)
        return (record, p)
    }

    // MARK: start, state, kill, pause, resume, delete

    public func start(id: String) throws {
        try ContainerStore.validate(id: id)
        // The hint saves decoding state.json; without one (poststart hooks) the full record.
        let hint = store.loadStartHint(id)
        let r = hint == nil ? try store.load(id) : nil
        let initPid = hint?.pid ?? r!.initPid
        let initStartTime = hint.map { $0.startTime } ?? r!.initStartTime
        Trace.mark("start: state loaded")
        let status: RuntimeStatus
        if let r { status = store.status(r) } else {
            status = !Processes.isAlive(pid: initPid, startTime: initStartTime) ? .stopped
                : FS.exists(store.fifoPath(id)) ? .created : .running
        }
        Trace.mark("start: status")
        guard status == .created else {
            throw RuntimeError.wrongState(id, status, status == .stopped ? "cannot start a container that has stopped" : "cannot start an already running container")
        }
        let path = store.fifoPath(id)
        let fd = try sys(open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), "open", path)
        defer { close(fd) }
        // The init holds the write side open once it opens it; wait for its byte.
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let r2 = poll(&pfd, 1, 20)
            if r2 > 0 {
                var b: UInt8 = 0
                if read(fd, &b, 1) == 1 { break }
            }
            if !Processes.isAlive(pid: initPid, startTime: initStartTime) {
                throw CryoFailure(.internal, "cannot start container \(id): its init process exited")
            }
        }
        unlink(path)
        unlink(store.startHintPath(id))
        guard let r else { return }
        let st = HookState(ociVersion: r.spec.ociVersion, id: id, status: "running", pid: r.initPid, bundle: r.bundle, annotations: r.annotations)
        for h in r.spec.hooks?.poststart ?? [] {
            do { try Hooks.run(h, kind: "poststart", state: st) } catch { RuntimeLog.logger.warning("\(error)") }
        }
    }

    public func state(id: String) throws -> OCIState {
        let r = try store.load(id)
        let s = store.status(r)
        return OCIState(ociVersion: r.spec.ociVersion, id: r.id, pid: s == .stopped ? 0 : r.initPid,
                        status: s.rawValue, bundle: r.bundle, rootfs: r.rootfs, created: r.created,
                        annotations: r.annotations, owner: r.owner)
    }

    public func kill(id: String, signal: Int32, all: Bool) throws {
        let r = try store.load(id)
        let status = store.status(r)
        guard status != .stopped else { throw RuntimeError.wrongState(id, status, "container not running") }
        let cgroup = Cgroup(path: r.cgroupPath)
        // A frozen task keeps a SIGKILL pending until it is thawed (cgroup v1 freezer): a
        // killed container must not stay paused (or stuck frozen) and alive.
        defer { if signal == SIGKILL && status == .paused { try? cgroup.thaw() } }
        if all {
            for pid in cgroup.pids() { Glibc.kill(pid, signal) }
            return
        }
        let pidfd = try sys(cryo_pidfd_open(r.initPid, 0), "pidfd_open", "pid \(r.initPid)")
        defer { close(pidfd) }
        // The pid could have been reused between the status check and pidfd_open.
        guard Processes.isAlive(pid: r.initPid, startTime: r.initStartTime) else {
            throw RuntimeError.wrongState(id, .stopped, "container not running")
        }
        try sys(cryo_pidfd_send_signal(pidfd, signal), "pidfd_send_signal", "pid \(r.initPid)")
    }

    public func pause(id: String) throws {
        let r = try store.load(id)
        let s = store.status(r)
        guard s == .running else { throw RuntimeError.wrongState(id, s, "container not running") }
        try Cgroup(path: r.cgroupPath).freeze()
    }

    public func resume(id: String) throws {
        let r = try store.load(id)
        let s = store.status(r)
        guard s == .paused else { throw RuntimeError.wrongState(id, s, "container not paused") }
        try Cgroup(path: r.cgroupPath).thaw()
    }

    public func delete(id: String, force: Bool) throws {
        let r = try store.load(id)
        let s = store.status(r)
        let cgroup = Cgroup(path: r.cgroupPath)
        switch s {
        case .running, .paused:
            guard force else { throw RuntimeError.wrongState(id, s, "cannot delete a container that is not stopped (use --force)") }
            try killAll(r, cgroup)
        case .created, .creating:
            try killAll(r, cgroup)
        case .stopped:
            // Leftover processes (e.g. exec'd ones re-parented) die with the container.
            for pid in cgroup.pids() { Glibc.kill(pid, SIGKILL) }
        }
        cgroup.destroy()
        let st = HookState(ociVersion: r.spec.ociVersion, id: id, status: "stopped", pid: nil, bundle: r.bundle, annotations: r.annotations)
        for h in r.spec.hooks?.poststop ?? [] {
            do { try Hooks.run(h, kind: "poststop", state: st) } catch { RuntimeLog.logger.warning("\(error)") }
        }
        try FS.removeAll(store.dir(id))
    }

    /// The cgroup of `id`: from its state, or — for a create or restore that never got as
    /// far as saving one — from the bundle's spec.
    func cgroupOf(_ id: String, bundle: String) -> Cgroup {
        if let r = try? store.load(id) { return Cgroup(path: r.cgroupPath) }
        let spec = try? Self.loadSpec(bundle: bundle)
        return Cgroup(path: spec.map { Self.cgroupPath($0, id: id) } ?? "/cryo/\(id)")
    }

    /// Live processes of `id` (its cgroup's), whether or not it got as far as a state file.
    public func livePids(id: String, bundle: String) -> [pid_t] {
        guard FS.exists(store.dir(id)) else { return [] }
        return cgroupOf(id, bundle: bundle).pids()
    }

    /// Removes whatever is left of `id` after its monitor died, including a create or restore
    /// that never finished (no state file yet): every process in its cgroup is killed (thawed
    /// if frozen), the cgroups, CRIU's root mount and the state directory removed.
    public func discard(id: String, bundle: String) throws {
        try ContainerStore.validate(id: id)
        let dir = store.dir(id)
        guard FS.exists(dir) else { return }
        if FS.exists(store.statePath(id)) {
            try delete(id: id, force: true)
            return
        }
        let cgroup = cgroupOf(id, bundle: bundle)
        for _ in 0..<2500 {
            let pids = cgroup.pids()
            if pids.isEmpty { break }
            for p in pids { Glibc.kill(p, SIGKILL) }
            try? cgroup.thaw()
            usleep(2000)
        }
        if !cgroup.pids().isEmpty { throw CryoFailure(.internal, "container \(id): processes \(cgroup.pids()) did not exit after SIGKILL") }
        cgroup.destroy()
        // The restore's bind of the rootfs goes before anything is deleted under it.
        let criuRoot = dir + "/criu-root"
        if FS.exists(criuRoot) {
            _ = umount2(criuRoot, Int32(MNT_DETACH))
            if rmdir(criuRoot) != 0 && errno != ENOENT { throw SyscallError("rmdir", criuRoot) }
        }
        try FS.removeAll(dir)
    }

    /// SIGKILL everything in the cgroup (a frozen cgroup must be thawed for the
    /// signal to be delivered) and wait until the init is gone.
    func killAll(_ r: ContainerRecord, _ cgroup: Cgroup) throws {
        let pids = cgroup.pids()
        for pid in pids { Glibc.kill(pid, SIGKILL) }
        if Processes.isAlive(pid: r.initPid, startTime: r.initStartTime) { Glibc.kill(r.initPid, SIGKILL) }
        try? cgroup.thaw()
        for _ in 0..<5000 {
            if !Processes.isAlive(pid: r.initPid, startTime: r.initStartTime) && cgroup.pids().isEmpty { return }
            // Our own child (run/restore without --detach) must be reaped here.
            var st: Int32 = 0
            _ = waitpid(r.initPid, &st, WNOHANG)
            usleep(2000)
        }
        throw CryoFailure(.internal, "container \(r.id): processes did not exit after SIGKILL")
    }

    public func list() -> [OCIState] {
        store.list().compactMap { try? state(id: $0) }
    }

    public func processes(id: String) throws -> [pid_t] {
        let r = try store.load(id)
        return Cgroup(path: r.cgroupPath).pids()
    }
}

func describe(_ e: DecodingError) -> String {
    func path(_ c: [CodingKey]) -> String { c.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") }
    switch e {
    case .typeMismatch(let t, let c): return "\(path(c.codingPath)): expected \(t)"
    case .valueNotFound(let t, let c): return "\(path(c.codingPath)): missing \(t)"
    case .keyNotFound(let k, let c): return "\(path(c.codingPath + [k])): required key is missing"
    case .dataCorrupted(let c): return "\(path(c.codingPath)): \(c.debugDescription)"
    @unknown default: return "\(e)"
    }
}
