import CryoImages
import CryoLinux
import CryoMonitor
import CryoNetwork
import CryoOCI
import CryoRuntime
import FoundationEssentials
import Glibc

extension Engine {
    // MARK: create

    /// `fixedID`: a migrated container keeps the id it had on its source.
    /// `initial` completes the record before its first write (a migrated container's session and
    /// pending operation); a record born with an operation is written durably.
    public func create(name requested: String?, _ req: CreateContainerRequest, fixedID: String? = nil,
                       initial: (@Sendable (inout StoredContainer) -> Void)? = nil) async throws -> String {
        let name = try requested.map { try Names.validate($0) } ?? uniqueName()
        let checkedHost = try CreateValidation.validate(config: req.config, hostConfig: req.hostConfig)
        try HealthcheckSettings.validate(req.config.Healthcheck)
        let restartPolicy = try RestartPolicyDecision.policy(req.hostConfig.RestartPolicy)
        if req.hostConfig.AutoRemove == true, restartPolicy != .no {
            throw EngineError.bad("conflicting options: cannot specify both --restart and --rm")
        }
        if let other = allRecords.first(where: { $0.name == name }) {
            throw EngineError.conflict("Conflict. The container name \"/\(name)\" is already in use by container \"\(other.id)\". You have to remove (or rename) that container to be able to reuse that name.")
        }
        guard let imageRef = req.config.Image, !imageRef.isEmpty else {
            throw EngineError.bad("config.Image: an image is required")
        }
        try CheckpointLabels.validate(req.config.Labels)
        // The image's index, config and passwd/group files are read on a pool thread.
        let store = images
        let masked = req.hostConfig.MaskedPaths ?? Spec.defaultMaskedPaths
        let initCandidate = initBinary
        let (image, imageConfig, passwd, group, maskedDirectories, hasInit) = try await blocking {
            () throws -> (StoredImage, ImageConfiguration.Config?, String, String, [String], Bool) in
            let image: StoredImage
            do { image = try store.inspect(imageRef) } catch { throw EngineError.noSuchImage(imageRef) }
            let lowers = store.lowerDirs(for: image)
            return (image, try store.config(of: image).config,
                    Self.readFromLayers(lowers, "etc/passwd"), Self.readFromLayers(lowers, "etc/group"),
                    masked.filter { FS.isDirectory($0) }, FS.exists(initCandidate))
        }
        let id = fixedID ?? Names.randomID()
        if slots[id] != nil { throw EngineError.conflict("a container with id \(id) already exists") }
        var input = SpecBuilder.Input(id: id, config: req.config, hostConfig: req.hostConfig, image: imageConfig)
        input.passwd = passwd
        input.group = group
        input.networkNamespacePath = paths.netns(id)
        input.shmDir = paths.shm(id)
        input.cgroupParent = options.cgroupParent
        input.tmpfsDir = paths.tmpfs(id)
        input.maskedDirectories = maskedDirectories
        if hasInit { input.initBinary = initCandidate }
        // --privileged and --device read the host's /dev: on the pool.
        let hostConfig = req.hostConfig
        input.confinement = try await blocking { try Confinement.from(hostConfig) }
        let mode = req.hostConfig.NetworkMode
        let net = try await blocking { try self.networkFor(mode: mode) }
        let exposed = Array((req.config.ExposedPorts ?? [:]).keys) + Array((imageConfig?.ExposedPorts ?? [:]).keys)
        let ports = try Self.portMappings(req.hostConfig.PortBindings, publishAll: req.hostConfig.PublishAllPorts ?? false,
                                          exposed: exposed)
        let ip = Self.requestedIP(req.networkingConfig, mode: req.hostConfig.NetworkMode, network: net)
        let endpoint = Self.chosenEndpoint(req.networkingConfig, mode: req.hostConfig.NetworkMode, network: net)
        let aliases = try NetworkAliases.from(endpoint)
        if !aliases.isEmpty, net == nil || net?.name == NetworkDefaults.defaultName {
            throw EngineError.bad("network-scoped aliases are only supported for user-defined networks")
        }
        let links = try checkedLinks((endpoint?.Links ?? []) + (req.hostConfig.Links ?? []), network: net)
        let mac = try Self.requestedMAC(req.networkingConfig, config: req.config, mode: req.hostConfig.NetworkMode, network: net)
        if net == nil && (!ports.isEmpty || ip != nil || mac != nil) {
            throw EngineError.bad("published ports, --ip and --mac-address need a network: not with network mode \(req.hostConfig.NetworkMode ?? "")")
        }
        // Docker publishes nothing on macvlan and says nothing; cryo refuses what it cannot honour.
        if let net, net.isMacvlan, !ports.isEmpty {
            throw EngineError.bad("network \(net.name) is a macvlan network: ports cannot be published (-p/-P); the container is reachable at its own address on the segment")
        }
        let ownNetwork = req.hostConfig.NetworkMode != "host"
        if ownNetwork { input.etcFilesDir = paths.containerDir(id) }
        let mounts = try ContainerMounts.resolve(binds: req.hostConfig.Binds ?? [], mounts: req.hostConfig.Mounts ?? [],
                                                 anonymous: Array((req.config.Volumes ?? [:]).keys),
                                                 imageVolumes: Array((imageConfig?.Volumes ?? [:]).keys))
        input.hostBinds = mounts.hostBinds
        let volumeStore = volumes
        input.volumeMounts = mounts.volumes.map { ContainerMounts.specMount($0, data: volumeStore.data($0.name)) }
        let spec = try SpecBuilder.build(input)
        // Created implicitly, as dockerd does (an existing one is used as it is). Claimed until
        // the record holds them, so a concurrent `volume rm` cannot take one away meanwhile.
        let uses = mounts.volumes
        if let busy = uses.first(where: { volumesBeingRemoved.contains($0.name) }) {
            throw EngineError.conflict("volume \(busy.name) is being removed: it cannot be mounted by a new container")
        }
        if let v = uses.first(where: { volumesMovingOut[$0.name] != nil }) {
            throw EngineError.conflict("volume \(v.name) is moving to another host with container \(volumesMovingOut[v.name]!) (cryo migrate): it cannot be mounted by a new container here")
        }
        for v in uses { volumeClaims[v.name, default: 0] += 1 }
        defer {
            for v in uses {
                volumeClaims[v.name, default: 1] -= 1
                if volumeClaims[v.name] == 0 { volumeClaims[v.name] = nil }
            }
        }
        try await blocking {
            for v in uses { _ = try volumeStore.create(v.name, labels: v.labels ?? [:], anonymous: v.anonymous) }
        }
        if !uses.isEmpty { await faultPoint("create-volumes-made") }

        var config = req.config
        config.Image = imageRef
        if config.Env == nil { config.Env = spec.process?.env }
        if config.Cmd == nil, req.config.Entrypoint == nil { config.Cmd = imageConfig?.Cmd }
        if config.Entrypoint == nil { config.Entrypoint = imageConfig?.Entrypoint }
        if config.WorkingDir == nil { config.WorkingDir = imageConfig?.WorkingDir }
        config.Healthcheck = HealthcheckSettings.merge(container: req.config.Healthcheck, image: imageConfig?.Healthcheck)
        if !exposed.isEmpty { config.ExposedPorts = Dictionary(exposed.map { ($0, EmptyObject()) }, uniquingKeysWith: { a, _ in a }) }
        if config.Hostname == nil || config.Hostname == "" { config.Hostname = spec.hostname }
        var host = checkedHost
        if host.LogConfig?.Type == nil || host.LogConfig?.Type == "" { host.LogConfig = LogConfig(type: "json-file") }
        if host.NetworkMode == nil || host.NetworkMode == "" || host.NetworkMode == "default" { host.NetworkMode = "default" }
        if host.RestartPolicy?.Name == nil || host.RestartPolicy?.Name == "" { host.RestartPolicy = RestartPolicy() }
        // As Docker's inspect shows them (cryo's default cgroup namespace is private).
        if host.IpcMode == nil || host.IpcMode == "" { host.IpcMode = "private" }
        if host.CgroupnsMode == nil || host.CgroupnsMode == "" { host.CgroupnsMode = "private" }
        if host.PidMode == nil { host.PidMode = "" }
        if host.UsernsMode == nil { host.UsernsMode = "" }
        if host.Privileged == nil { host.Privileged = false }
        // Path and Args are the user's command, as in Docker's inspect, also under --init.
        var argv = spec.process?.args ?? []
        if req.hostConfig.Init == true { argv.removeFirst(min(2, argv.count)) }
        var record = StoredContainer(id: id, name: name, created: rfc3339Now(), imageRef: imageRef, imageID: image.id.description,
                                     config: config, hostConfig: host, path: argv.first ?? "", args: Array(argv.dropFirst()))
        record.networkName = net?.name
        record.networkID = net?.id
        record.requestedIP = ip
        record.networkAliases = aliases.isEmpty ? nil : aliases
        record.networkLinks = links.isEmpty ? nil : links.map(\.text)
        record.macAddress = mac
        record.portMappings = ports.isEmpty ? nil : ports
        record.volumes = uses.isEmpty ? nil : uses
        initial?(&record)
        let p = paths
        // A create that fails half-way leaves nothing behind in <root>/containers.
        do {
            try await blocking {
                try FS.mkdirAll(p.bundle(id), mode: 0o700)
                if ownNetwork {
                    // Bind-mount sources: empty now, written at every start.
                    for f in [ContainerFiles.hostnameFile, ContainerFiles.hostsFile, ContainerFiles.resolvFile] {
                        try FS.atomicWrite(p.containerDir(id) + "/" + f, [], mode: 0o644, durable: false)
                    }
                }
                let data = try JSONEncoder().encode(spec)
                try FS.atomicWrite(p.bundle(id) + "/config.json", Array(data), mode: 0o600, durable: false)
            }
            // Another create may have taken the name while this one waited for the disk.
            if let other = allRecords.first(where: { $0.name == name }) {
                throw EngineError.conflict("Conflict. The container name \"/\(name)\" is already in use by container \"\(other.id)\". You have to remove (or rename) that container to be able to reuse that name.")
            }
            try await save(record, durable: record.operation != nil)
        } catch {
            slots[id] = nil
            let dir = paths.containerDir(id)
            _ = try? await blocking { try FS.removeAll(dir) }
            throw error
        }
        if let c = slots[id]?.record { emitContainer("create", c) }
        return id
    }

    /// Directories in `<root>/containers` without a record: creates that cryod did not
    /// finish (killed between the directory and the record). Nothing in them was ever
    /// started; one with anything mounted is left alone. Returns the ids removed.
    @discardableResult
    public func removeInterruptedCreates() async -> [String] {
        // Runs at start, before any request is served: no create can be under way, so the
        // ids known now are all there are.
        let known = Set(slots.keys)
        let p = paths
        return (try? await blocking { () -> [String] in
            var removed: [String] = []
            for id in (try? FS.listDirectory(p.containers)) ?? [] where !known.contains(id) {
                guard FS.lstatMode(p.record(id)) == nil, FS.lstatMode(p.containerDir(id)) == S_IFDIR else { continue }
                if [p.rootfs(id), p.shm(id), p.tmpfs(id)].contains(where: FS.isMountPoint) { continue }
                if (try? FS.removeAll(p.containerDir(id))) != nil { removed.append(id) }
            }
            return removed
        }) ?? []
    }

    func uniqueName() -> String {
        while true {
            let n = Names.randomName()
            if !allRecords.contains(where: { $0.name == n }) { return n }
        }
    }

    /// A file from the image's layers (top-most first), for user lookup at create.
    static func readFromLayers(_ lowers: [String], _ rel: String) -> String {
        for l in lowers {
            let path = l + "/" + rel
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            if st.st_mode & S_IFMT != S_IFREG { return "" }   // whiteout or odd file: no such file
            return (try? FS.readString(path)) ?? ""
        }
        return ""
    }

    // MARK: start / restore

    /// Starts a created or exited container, or restores it from a checkpoint.
    /// Like Docker, a failed start removes an AutoRemove container (`docker run --rm` waits for that).
    public func start(_ ref: String, checkpoint: String? = nil, checkpointDir: String? = nil) async throws {
        let id = try resolve(ref).id
        do {
            try await withLock(id) {
                resetRestartPolicyState(id)
                try await startLocked(id, ref: ref, checkpoint: checkpoint, checkpointDir: checkpointDir)
            }
        } catch {
            await removeAfterFailedStart(id, restoring: checkpoint != nil)
            throw error
        }
    }

    /// Like Docker, a failed start removes an AutoRemove container (`docker run --rm` waits
    /// for that). Outside the lock: the removal takes it.
    func removeAfterFailedStart(_ id: String, restoring: Bool) async {
        if !restoring, let c = record(id), c.hostConfig.AutoRemove == true, !c.isRunning { try? await remove(c.id, force: true, removeVolumes: true) }
    }

    /// Start or restore, with the container's lock held by the caller; then its events
    /// (`restore` — cryo's — and `start`, as dockerd emits for a restore too).
    func startLocked(_ id: String, ref: String, checkpoint: String?, checkpointDir: String?) async throws {
        try await startOrRestoreLocked(id, ref: ref, checkpoint: checkpoint, checkpointDir: checkpointDir)
        if let c = record(id) {
            if let checkpoint { emitContainer("restore", c, ["checkpoint": checkpoint]) }
            emitContainer("start", c)
        }
    }

    func startOrRestoreLocked(_ id: String, ref: String, checkpoint: String?, checkpointDir: String?) async throws {
        let c = try resolve(id)
        if let e = StateMachine.check(checkpoint == nil ? .start : .restore, status: c.status, id: ref) { throw e }
        var restore: RestorePlan?
        var recorded: CheckpointNetwork?
        if let name = checkpoint {
            try Names.validateCheckpoint(name)
            let workPath = paths.containerDir(id) + "/restore-work"
            let volumeStore = volumes
            let (metadata, plan) = try await blocking { () throws -> (CheckpointMetadata, RestorePlan) in
                let dir = try self.checkpointPath(id, name: name, dir: checkpointDir)
                guard FS.exists(dir + "/inventory.img") else {
                    throw EngineError(.notFound, "checkpoint \(name) does not exist for container \(c.name)")
                }
                let metadata = try CheckpointMetadata.load(dir)
                try metadata.checkVolumes(volumeStore, checkpoint: name)
                return (metadata, Self.restorePlan(c, checkpoint: dir, metadata: metadata, workPath: workPath,
                                                        imagesHoldNetworkNamespace: { Runtime.imagesHoldNetworkNamespace(dir) }))
            }
            restore = plan
            recorded = metadata.address
        }
        await awaitTeardown(id)
        // A restore needs its old address: refused before anything is touched if it is taken.
        let address = try await checkRestoreAddress(c, recorded: recorded)
        // Processes of this container that cryod does not know of are never killed to make
        // room: a restore over them would leave the container twice, or step back in time.
        let rt = runtime, bundle = paths.bundle(id)
        let live = try await blocking { rt.livePids(id: id, bundle: bundle) }   // one stat unless something is left
        if !live.isEmpty {
            throw EngineError.conflict("cannot \(checkpoint == nil ? "start" : "restore") container \(c.name): processes of it are still alive (pids \(live.map(String.init).joined(separator: " "))) though it is \(c.status.rawValue); remove it with rm -f")
        }
        if let r = restore, let name = checkpoint {
            try await beginOperation(id, PendingOperation(kind: .restore, checkpoint: name, directory: r.imagePath, began: rfc3339Now()))
        }
        defer { if restore != nil { endOperation(id) } }
        do {
            try await launch(c, restore: restore, restoreIP: address?.ip, restorePorts: address?.ports, restoreMAC: address?.mac)
        } catch {
            await failedStart(id, error)
            throw error
        }
    }

    /// A start or restore that failed: the container is exited with Docker's codes
    /// (127 command not found, 126 not executable, 128 otherwise) and the error in its
    /// state; whoever waits on it (attach, wait) is let go. (`start` removes an
    /// AutoRemove container afterwards.)
    func failedStart(_ id: String, _ error: Error) async {
        let text = "\(error)"
        let code: Int32 = CommandExit.status(of: error) ?? 128
        update(id) { c in
            c.status = .exited
            c.exitCode = code
            c.pid = 0
            c.monitorPid = 0
            c.finishedAt = rfc3339Now()
            if c.error.isEmpty { c.error = text }
        }
        // Nothing of a failed start runs on (a monitor that died after restoring leaves its
        // container behind).
        await discardRuntimeLeftovers(id)
        await beginNetworkTeardown(id).value
        releasePendingAttach(id)
        resumeExitWaiters(id, code)
    }

    /// Mounts the root, starts the monitor (which creates or restores the container),
    /// lets early attachers connect, then starts the init. A start attaches the network
    /// before the monitor; a restore attaches it while the monitor and CRIU work, CRIU
    /// held before the sockets by a `ReadyGate` (see `RestorePlan.networkGateFD`).
    func launch(_ c: StoredContainer, restore: RestorePlan?, restoreIP: String? = nil, restorePorts: [PortMapping]? = nil,
                restoreMAC: String? = nil) async throws {
        let id = c.id
        let p = paths
        let store = images
        let lowers = try await blocking { () throws -> [String] in
            do { return store.lowerDirs(for: try store.inspect(c.imageID)) } catch { throw EngineError.noSuchImage(c.imageRef) }
        }
        let volumeStore = volumes
        let ownNetwork = c.hostConfig.NetworkMode != "host"
        // A restore with a network of its own does not wait for the attach: the monitor and
        // CRIU start at once, and the runtime holds CRIU before it restores sockets until
        // this gate opens (or fails, and CRIU aborts).
        let gate = restore != nil && ownNetwork ? try ReadyGate.make() : nil
        var restorePlan = restore
        if gate != nil { restorePlan?.networkGateFD = 4 }   // the monitor's fd 4 (MonitorLink's extraFDs)
        let config = MonitorConfig(id: id, runtimeRoot: p.runtimeRoot, bundle: p.bundle(id), logPath: p.log(id),
                                   exitPath: p.exitRecord(id), socketPath: p.monitorSocket(id), consoleSocketPath: p.consoleSocket(id),
                                   tty: c.config.Tty ?? false, openStdin: c.config.OpenStdin ?? false,
                                   stdinOnce: c.config.StdinOnce ?? false, restore: restorePlan,
                                   statePath: p.monitorState(id))
        let binary = monitorBinary
        let reaper = self.reaper
        let rt = runtime
        // Both ends closed on every path: the write end by `attach` below (or here, if it
        // never starts), the read end once the attach is over (so opening never hits EPIPE).
        var gateWriteOwned = gate != nil
        defer {
            if let gate {
                if gateWriteOwned { ReadyGate.fail(gate.write) }
                close(gate.read)
            }
        }
        try await blocking { () throws -> Void in
            Trace.mark("launch \(id.prefix(12)): begin")
            try RootfsMount.ensure(lowerDirs: lowers, upper: p.upper(id), work: p.work(id), target: p.rootfs(id))
            Trace.mark("launch \(id.prefix(12)): rootfs mounted")
            try ShmMount.prepare(p.shm(id), fresh: restore == nil, size: c.hostConfig.ShmSize ?? 0)
            // A restore after a reboot finds /dev remade: with the spec's extra device nodes.
            let devices = restore != nil && (c.hostConfig.Privileged == true || !(c.hostConfig.Devices ?? []).isEmpty)
                ? ((try? JSONDecoder().decode(Spec.self, from: Data(FS.readBytes(p.bundle(id) + "/config.json"))))?.linux?.devices ?? []) : []
            try ContainerTmpfs.prepare(p.tmpfs(id), fresh: restore == nil, tty: c.config.Tty ?? false, devices: devices)
            // Docker creates a missing working directory (`docker run -w /new/dir`).
            if restore == nil, let wd = c.config.WorkingDir, !wd.isEmpty { try FS.mkdirAll(try FS.secureJoin(root: p.rootfs(id), wd)) }
            try Self.prepareVolumes(c.volumes ?? [], store: volumeStore, rootfs: p.rootfs(id), restoring: restore != nil)
            if ownNetwork { try NetworkNamespace.ensure(at: p.netns(id)) }
            // Locked before it gets an address, when the plan has cryo lock it; the runtime
            // unlocks it when the restored tasks are about to run (see NetworkLock).
            if ownNetwork && restore?.network.locker == .cryo { try NetworkLock.lock(netnsPath: p.netns(id)) }
            Trace.mark("launch \(id.prefix(12)): netns ready")
        }
        // A fresh start: the network before the monitor. A restore: the attach runs alongside
        // the monitor's start and CRIU's early work, and opens the gate when it is done.
        let attach: Task<Error?, Never>
        if let gate {
            gateWriteOwned = false
            attach = Task {
                do {
                    try await self.attachNetwork(id, restoreIP: restoreIP, restorePorts: restorePorts, restoreMAC: restoreMAC)
                } catch {
                    ReadyGate.fail(gate.write)
                    Trace.mark("launch \(id.prefix(12)): network attach failed")
                    return error
                }
                ReadyGate.open(gate.write)
                Trace.mark("launch \(id.prefix(12)): network attached, gate open")
                return nil
            }
        } else {
            try await attachNetwork(id, restoreIP: restoreIP, restorePorts: restorePorts, restoreMAC: restoreMAC)
            Trace.mark("launch \(id.prefix(12)): network attached")
            attach = Task { nil }
        }
        let launched: Result<MonitorReady, Error>
        do {
            let extra = gate.map { [$0.read] } ?? []
            launched = .success(try await blocking { () throws -> MonitorReady in
                unlink(p.exitRecord(id))
                unlink(p.monitorState(id))
                // A stale runtime state (monitor killed with the machine, or during a restore)
                // would block the id; startOnce made sure nothing of it is alive.
                try rt.discard(id: id, bundle: p.bundle(id))
                try FS.atomicWrite(p.monitorConfig(id), Array(try JSONEncoder().encode(config)), mode: 0o600, durable: false)
                let ready = try MonitorLink.launch(binary: binary, configPath: p.monitorConfig(id), logPath: p.monitorLog(id),
                                                  reaper: reaper, extraFDs: extra)
                Trace.mark("launch \(id.prefix(12)): monitor ready")
                FaultPoint.hit(restore == nil ? "start-monitor-ready" : "restore-monitor-reported")
                return ready
            })
        } catch {
            launched = .failure(error)
        }
        // The attach is always over before this returns or throws: a failed start's teardown
        // (failedStart) must find the attachment in its final state.
        if let attachError = await attach.value {
            // The restore was stopped at the gate (the monitor reports that, and has cleaned
            // up); the CNI error is the one to report. Should the restore have finished
            // anyway, its container goes.
            if case .success(let r) = launched, r.error == nil {
                try? await blocking { try rt.kill(id: id, signal: SIGKILL, all: true) }
            }
            throw attachError
        }
        let ready = try launched.get()
        if let e = ready.error {
            let what = restore == nil ? "starting container" : "restoring container from \(restore!.imagePath)"
            update(id) { $0.error = "\(what): \(e)" }
            // The monitor's code travels on (a command that cannot be run gets its 126/127
            // in failedStart); whatever else failed in the monitor is cryod's failure (500).
            let failure = ready.failure(step: "\(what) \(c.name)")!
            throw failure.has(.commandNotRunnable) ? failure : CryoFailure(.internal, failure.message, cause: failure.cause)
        }
        let monitorPid = ready.monitorPid ?? 0
        update(id) { s in
            s.monitorPid = monitorPid
            s.monitorStartTime = Processes.startTime(pid: monitorPid)
            s.pid = ready.initPid ?? 0
            s.error = ""
        }
        watch(id)
        if restore == nil {
            // `docker run` attaches before it starts: let those attachers connect first.
            await releaseEarlyAttachers(id)
            do {
                try await blocking { try rt.start(id: id) }
                Trace.mark("launch \(id.prefix(12)): started")
            } catch {
                try? await blocking { try rt.kill(id: id, signal: SIGKILL, all: true) }
                throw EngineError.internalError("starting container \(c.name): \(error)")
            }
        }
        slots[id]?.runningSince = Monotonic.now()
        update(id) { s in
            s.status = .running
            s.stopCause = nil
            s.startedAt = rfc3339Now()
            s.exitCode = 0
            s.finishedAt = "0001-01-01T00:00:00Z"
        }
        startHealthMonitor(id)
        // A migration's target announces only once the source has let go (commitMigrated).
        if restore != nil, restore?.keepNetworkLocked != true, let e = record(id)?.endpoint { announce(e, netns: p.netns(id)) }
    }

    /// After a restore, with the network unlocked (the runtime removed NetworkLock's table
    /// before the tasks resumed): tell the segment where the address lives now (see
    /// GratuitousARP). On a thread of its own (it switches namespaces and sleeps between
    /// packets), so the start returns at once; a failure is logged, the container runs on.
    nonisolated func announce(_ e: Attachment, netns: String) {
        guard let ip = IPv4Address(e.ip), let mac = MACAddress(e.mac) else { return }
        let octets = [UInt8(ip.value >> 24), UInt8(ip.value >> 16 & 0xff), UInt8(ip.value >> 8 & 0xff), UInt8(ip.value & 0xff)]
        let interface = e.interface, id = e.containerID
        DetachedThread {
            do {
                try GratuitousARP.announce(netnsPath: netns, interface: interface, ip: octets, mac: mac.bytes)
            } catch let e as SyscallError where [ENXIO, ENODEV, ENOENT].contains(e.errno) {
                // Its interface or namespace went away meanwhile: stopped or removed at once.
                EngineLog.logger.debug("announcing container \(id.prefix(12))'s address after its restore: \(e) (it is gone)")
            } catch {
                EngineLog.logger.warning("announcing container \(id.prefix(12))'s address \(e.ip) after its restore: \(error)")
            }
        }.start()
    }

    // MARK: early attach (attach before start, as `docker run` does)

    /// Waits until the container has a monitor to attach to (it may not be started yet).
    public func awaitMonitor(_ id: String) async {
        // A container that does not exist (any more) has no monitor to wait for.
        guard let c = record(id) else { return }
        if c.isRunning || c.monitorPid != 0 && c.status != .exited { return }
        await withCheckedContinuation { slots[id]!.pendingAttach.append($0) }
    }

    /// An early attacher has connected to the monitor (or given up).
    public func attachedEarly(_ id: String) {
        slots[id]?.attachedBeforeStart -= 1
    }

    /// Lets every request waiting for the monitor go on (it exists now, or never will).
    func releasePendingAttach(_ id: String) {
        guard let waiting = slots[id]?.pendingAttach, !waiting.isEmpty else { return }
        slots[id]!.pendingAttach = []
        for w in waiting { w.resume() }
    }

    func releaseEarlyAttachers(_ id: String) async {
        guard let waiting = slots[id]?.pendingAttach, !waiting.isEmpty else { return }
        slots[id]!.attachedBeforeStart += waiting.count
        releasePendingAttach(id)
        // Give them up to 2 s to connect to the monitor before the container runs.
        for _ in 0..<200 {
            if (slots[id]?.attachedBeforeStart ?? 0) <= 0 { break }
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        slots[id]?.attachedBeforeStart = 0
    }

    // MARK: signals and stop

    /// Docker's kill. Under the container's lock like every change: a kill during a
    /// checkpoint, start or pause waits for it (a signal sent into a checkpoint's frozen tasks
    /// used to land in the dump or be lost). During a `stop` (or a forced removal) waiting for
    /// the exit, it goes straight through, as in Docker: `docker kill` cuts a long stop short.
    public func kill(_ ref: String, signal: Int32) async throws {
        let id = try resolve(ref).id
        if slots[id]?.stopping == true { return try await killNow(id, signal: signal) }
        try await withLock(id) { try await killNow(id, signal: signal) }
    }

    func killNow(_ id: String, signal: Int32) async throws {
        let c = try resolve(id)
        // Waiting out its restart policy's back-off: the kill is a manual stop (as in dockerd).
        if c.status == .restarting {
            cancelPendingRestart(id)
            markStoppedByUser(id)
            return
        }
        if let e = StateMachine.check(.kill, status: c.status, id: c.name) { throw e }
        markStoppedByUser(id)
        let rt = runtime
        try await blocking { try rt.kill(id: id, signal: signal, all: false) }
        emitContainer("kill", c, ["signal": String(signal)])
    }

    /// Docker's stop: the stop signal, `timeout` seconds, then SIGKILL.
    public func stop(_ ref: String, timeout: Int?, signal: Int32?) async throws {
        let id = try resolve(ref).id
        try await withLock(id) { try await stopLocked(id, timeout: timeout, signal: signal) }
        if let c = record(id) { emitContainer("stop", c) }
    }

    func stopLocked(_ id: String, timeout: Int?, signal: Int32?) async throws {
        let c = try resolve(id)
        if c.status == .restarting {
            cancelPendingRestart(id)
            markStoppedByUser(id)
            return
        }
        if let e = StateMachine.check(.stop, status: c.status, id: c.name) { throw e }
        markStoppedByUser(id)
        slots[id]?.stopping = true
        defer { slots[id]?.stopping = false }
        let sig = signal ?? c.config.StopSignal.flatMap { Signals.parse($0) } ?? SIGTERM
        let wait = timeout ?? c.config.StopTimeout ?? 10
        let rt = runtime
        // Paused, or left frozen by whatever froze it: the stop signal must be able to act.
        try? await blocking { try rt.resume(id: id) }
        try? await blocking { try rt.kill(id: id, signal: sig, all: false) }
        // Docker: -1 waits for ever; a timeout beyond any machine's uptime is the same.
        if wait < 0 || wait > Self.longestStopTimeout { _ = await waitExit(id); return }
        if await waitExit(id, timeout: Double(wait)) != nil { return }
        try? await blocking { try rt.kill(id: id, signal: SIGKILL, all: true) }
        if await waitExit(id, timeout: 30) != nil { return }
        // Never a success that changed nothing.
        if let now = record(id), now.isRunning {
            let left = (try? await blocking { try rt.processes(id: id) }) ?? []
            throw EngineError.internalError("cannot stop container \(now.name): its processes (\(left.map(String.init).joined(separator: " "))) are still alive 30 s after SIGKILL")
        }
    }

    /// Stop timeouts above this (~317 years) mean "wait for ever": no conversion to
    /// nanoseconds may overflow.
    static let longestStopTimeout = 10_000_000_000

    /// Waits for the container's next exit; nil on timeout.
    func waitExit(_ id: String, timeout: Double? = nil) async -> Int32? {
        guard let c = record(id), c.isRunning || c.status == .restarting else { return record(id)?.exitCode }
        return await nextExit(id, timeout: timeout)
    }

    /// The exit code of the container's next exit (nil on timeout or removal).
    func nextExit(_ id: String, timeout: Double?) async -> Int32? {
        guard slots[id] != nil else { return nil }
        nextWaiterToken += 1
        let token = nextWaiterToken
        return await withCheckedContinuation { (k: CheckedContinuation<Int32?, Never>) in
            slots[id]!.exitWaiters.append((token, k))
            // A timeout too large for a UInt64 of nanoseconds (or not a number) is no timeout.
            if let timeout, timeout.isFinite, timeout * 1e9 < Double(UInt64.max) {
                Task {
                    try? await Task.sleep(nanoseconds: UInt64(max(0, timeout) * 1e9))
                    self.expireWaiter(id, token)
                }
            }
        }
    }

    func expireWaiter(_ id: String, _ token: Int) {
        guard let i = slots[id]?.exitWaiters.firstIndex(where: { $0.token == token }) else { return }
        let w = slots[id]!.exitWaiters.remove(at: i)
        w.continuation.resume(returning: nil)
    }

    /// The container exited with `code` (nil: it is gone): every exit waiter goes on.
    func resumeExitWaiters(_ id: String, _ code: Int32?) {
        guard let waiting = slots[id]?.exitWaiters, !waiting.isEmpty else { return }
        slots[id]!.exitWaiters = []
        for w in waiting { w.continuation.resume(returning: code) }
    }

    /// Stop and start as one change: nothing else (a checkpoint, a pause, another restart)
    /// gets in between.
    public func restart(_ ref: String, timeout: Int?) async throws {
        let id = try resolve(ref).id
        do {
            try await withLock(id) {
                let c = try resolve(id)
                if let e = StateMachine.check(.restart, status: c.status, id: c.name) { throw e }
                if c.isRunning { try await stopLocked(id, timeout: timeout, signal: nil) }
                try await startLocked(id, ref: id, checkpoint: nil, checkpointDir: nil)
                update(id) { $0.restartCount += 1 }
                if let c = record(id) { emitContainer("restart", c) }
            }
        } catch {
            await removeAfterFailedStart(id, restoring: false)
            throw error
        }
    }

    /// Under the container's lock, like every change of its state: a pause that came during
    /// a `--leave-running` checkpoint used to be undone by the checkpoint's thaw while the
    /// record said paused.
    public func pause(_ ref: String) async throws { try await setPaused(ref, true) }

    public func unpause(_ ref: String) async throws { try await setPaused(ref, false) }

    func setPaused(_ ref: String, _ paused: Bool) async throws {
        let id = try resolve(ref).id
        try await withLock(id) {
            let c = try resolve(id)
            if let e = StateMachine.check(paused ? .pause : .unpause, status: c.status, id: c.name) { throw e }
            let rt = runtime
            // A migration that could not let its copy go left it frozen, its network locked
            // and, on a shared segment, its link down (`MigrationHold`): unpaused, it talks again.
            let held = !paused && c.heldByMigration != nil
            let netns = paths.netns(id)
            let iface = c.endpoint?.interface
            try await blocking {
                if held, FS.exists(netns) {
                    try? NetworkLock.unlock(netnsPath: netns)
                    if let iface { try? MigrationChecks.setLink(up: true, netnsPath: netns, interface: iface) }
                }
                paused ? try rt.pause(id: id) : try rt.resume(id: id)
            }
            // The segment may have learnt the address elsewhere meanwhile (the target's copy).
            if held, let e = c.endpoint { announce(e, netns: netns) }
            emitContainer(paused ? "pause" : "unpause", c)
            if paused { slots[id]?.pauses += 1 }
            update(id) {
                $0.status = paused ? .paused : .running
                if held {
                    $0.heldByMigration = nil
                    $0.error = ""
                }
            }
        }
    }

    // MARK: wait and remove

    public enum WaitCondition: String, Sendable { case notRunning = "not-running", nextExit = "next-exit", removed }

    /// Docker's wait. Returns the exit code (for `removed`, the last one).
    public func wait(_ id: String, condition: WaitCondition) async -> Int32 {
        switch condition {
        case .notRunning:
            guard let c = record(id) else { return 0 }
            if !c.isRunning && c.status != .restarting { return c.exitCode }
            return await waitExit(id) ?? 0
        case .nextExit:
            return await nextExit(id, timeout: nil) ?? record(id)?.exitCode ?? 0
        case .removed:
            guard let c = record(id) else { return 0 }
            var code = c.exitCode
            // `docker run --rm` waits before it starts the container: a created container's
            // next exit is the one to report (its removal before any exit resumes with nil).
            if c.isRunning || c.status == .restarting || c.status == .created {
                code = await nextExit(id, timeout: nil) ?? record(id)?.exitCode ?? code
            }
            if slots[id] != nil {
                await withCheckedContinuation { slots[id]!.removeWaiters.append($0) }
            }
            return code
        }
    }

    /// `removeVolumes` (`rm -v`): its anonymous volumes go too.
    public func remove(_ ref: String, force: Bool, removeVolumes: Bool = false) async throws {
        let id = try resolve(ref).id
        try await withLock(id) {
            let c = try resolve(id)
            if let e = StateMachine.check(force ? .forceRemove : .remove, status: c.status, id: c.name) { throw e }
            cancelPendingRestart(id)
            if c.isRunning {
                markStoppedByUser(id)
                let rt = runtime
                slots[id]?.stopping = true   // a kill goes through meanwhile, as during a stop
                defer { slots[id]?.stopping = false }
                if c.status == .paused { try? await blocking { try rt.resume(id: id) } }
                try? await blocking { try rt.kill(id: id, signal: SIGKILL, all: true) }
                _ = await waitExit(id, timeout: 30)
            }
            try await removeNow(id, volumes: removeVolumes)
        }
    }

    /// `volumes`: its anonymous volumes go too, before anyone waiting for the removal goes on.
    func removeNow(_ id: String, volumes removeVolumes: Bool = false) async throws {
        slots[id]?.pendingRestart?.task.cancel()
        slots[id]?.pendingRestart = nil
        let removed = slots[id]?.record
        update(id) { $0.status = .removing }
        await beginNetworkTeardown(id).value
        await awaitTeardown(id)
        let p = paths
        let rt = runtime
        try await blocking {
            if FS.exists(rt.store.dir(id)) { try? rt.delete(id: id, force: true) }
            RootfsMount.release(p.rootfs(id))
            ShmMount.release(p.shm(id))
            ContainerTmpfs.release(p.tmpfs(id))
            NetworkNamespace.remove(at: p.netns(id))
            try FS.removeAll(p.containerDir(id))
            unlink(p.monitorSocket(id))
            unlink(p.monitorState(id))
            unlink(p.monitorLog(id))
            unlink(p.monitorLog(id) + ".1")
        }
        if removeVolumes, let c = record(id) { await removeAnonymousVolumes(of: c) }
        if let removed { emitContainer("destroy", removed) }
        for e in execs.values where e.containerID == id { execs[e.id] = nil }
        // The slot goes with the record; whoever waited on it goes on. (Callers queued on its
        // lock get it in turn and find no container.)
        guard let slot = slots.removeValue(forKey: id) else { return }
        for w in slot.exitWaiters { w.continuation.resume(returning: nil) }
        for w in slot.removeWaiters { w.resume() }
        for w in slot.pendingAttach { w.resume() }
    }

    // MARK: shutdown

    /// Stops serving. With checkpointing on, every running container is checkpointed
    /// (and so stopped) and marked to be restored at the next start; otherwise the
    /// containers keep running under their monitors.
    public func shutdown() async {
        // Restarts waiting out a back-off stay `restarting` in their records: the next cryod
        // settles them (`startByRestartPolicy`).
        shuttingDown = true
        for id in Array(slots.keys) {
            slots[id]?.pendingRestart?.task.cancel()
            slots[id]?.pendingRestart = nil
        }
        if options.checkpointOnShutdown {
            for c in allRecords where c.status == .running {
                let name = "cryod-shutdown"
                do {
                    let stale = try checkpointPath(c.id, name: name, dir: nil)
                    _ = try? await blocking { try FS.removeAll(stale) }
                    _ = try await checkpoint(c.id, name: name, dir: nil, exit: true)
                    update(c.id) { $0.restoreOnStart = name }
                } catch {
                    update(c.id) { $0.error = "checkpoint at shutdown failed: \(error)" }
                }
            }
        }
        await recordWriter.flush()
        _ = try? await blocking { sync() }
        try? await pool.shutdownGracefully()
    }
}
