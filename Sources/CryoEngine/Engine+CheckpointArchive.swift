import CryoCheckpointInspect
import CryoArchive
import CryoImages
import CryoLinux
import CryoNetwork
import CryoOCI
import CryoRuntime
import FoundationEssentials
import Glibc

/// cryo's own description of the exported container (`cryo-container.json`): enough to
/// create it again, faithfully, in any cryod.
struct ArchivedContainer: Codable {
    var id: String
    var name: String
    var imageRef: String
    var imageID: String
    var config: ContainerConfig
    var hostConfig: HostConfig
}

/// What `restore --import` may change about the container it makes.
public struct CheckpointImportOptions: Sendable {
    public var name: String?
    /// A network name or mode (`--network`), an address on it (`--ip`), published ports (`-p`).
    public var network: String?
    public var ip: String?
    public var portBindings: [String: [PortBinding]?]?
    public init(name: String? = nil, network: String? = nil, ip: String? = nil, portBindings: [String: [PortBinding]?]? = nil) {
        self.name = name
        self.network = network
        self.ip = ip
        self.portBindings = portBindings
    }
}

public struct CheckpointImportReport: Codable, Sendable {
    public var Id: String
    public var Name: String
    /// Whether the archive carried cryo's digest list and every member matched it
    /// (podman's archives carry none).
    public var Verified: Bool
    /// "cryo" or "podman": who wrote the archive, as far as its members tell.
    public var Source: String
}

extension Engine {
    /// A private scratch directory under the root (exports and imports), made fresh.
    nonisolated func archiveScratch(_ kind: String) async throws -> String {
        let dir = paths.root + "/" + kind + "/" + Names.randomID().prefix(24)
        try await blocking {
            try FS.mkdirAll(FS.parent(dir), mode: 0o700)
            try FS.mkdirAll(dir, mode: 0o700)
        }
        return dir
    }

    /// Removes `path` (a file or a tree) on the pool; best effort, as the cleanups it serves.
    nonisolated func removeOffActor(_ path: String) async {
        _ = try? await blocking { try FS.removeAll(path) }
    }

    /// Runs `body`, then removes the scratch directory `dir` on the pool, whether `body`
    /// threw or not (a `defer` cannot await).
    func removingAfter<T: Sendable>(_ dir: String, _ body: () async throws -> T) async throws -> T {
        do {
            let r = try await body()
            await removeOffActor(dir)
            return r
        } catch {
            await removeOffActor(dir)
            throw error
        }
    }

    /// Writes checkpoint `name` of container `ref` as an archive in podman's export layout,
    /// into a new private file under the root whose path is returned (the caller streams it
    /// and removes it). The rootfs changes and /dev/shm are those of the container now.
    public func exportCheckpoint(_ ref: String, name: String, dir: String?, compression: ArchiveCompression) async throws -> String {
        try Names.validateCheckpoint(name)
        let c = try resolve(ref)
        let source = try await blocking { () throws -> String in
            let source = try self.checkpointPath(c.id, name: name, dir: dir)
            guard FS.lstatMode(source) == S_IFDIR, FS.lstatMode(source + "/inventory.img") == S_IFREG else {
                throw EngineError(.notFound, "checkpoint \(name) does not exist for container \(c.name)")
            }
            return source
        }
        let scratch = try await archiveScratch("exports")
        let p = paths
        let archived = ArchivedContainer(id: c.id, name: c.name, imageRef: c.imageRef, imageID: c.imageID, config: c.config, hostConfig: c.hostConfig)
        let configDump = Self.configDump(c, checkpointDir: source)
        let status = c.endpoint.map(Self.networkStatus)
        let uses = c.volumes ?? []
        let volumeStore = volumes
        do {
            return try await blocking {
                let out = scratch + "/" + Self.exportedCheckpointFile
                let w = try CheckpointArchiveWriter(path: out, compression: compression)
                // cryo's description first: an archive cut anywhere after it is seen to be cryo's.
                try w.addBytes(CheckpointArchiveLayout.cryoContainer, Array(try JSONEncoder().encode(archived)))
                try w.addBytes(CheckpointArchiveLayout.configDump, try Self.prettyJSON(configDump))
                try w.addBytes(CheckpointArchiveLayout.specDump, try Self.specDump(p.bundle(c.id) + "/config.json", c))
                try w.addTree(CheckpointArchiveLayout.checkpointDirectory, from: source,
                              skip: ["stats-dump", "dump.log", CheckpointMetadata.file, CheckpointMetadata.legacyOptionsFile, CheckpointMetadata.legacyNetworkFile])
                if let status { try w.addBytes(CheckpointArchiveLayout.networkStatus, try Self.prettyJSON(status)) }
                if FS.exists(source + "/stats-dump") { try w.addFile(CheckpointArchiveLayout.statsDump, from: source + "/stats-dump") }
                if FS.isDirectory(p.upper(c.id)) {
                    let diff = scratch + "/" + CheckpointArchiveLayout.rootfsDiff
                    let deleted = try InnerTar.write(p.upper(c.id), to: diff, whiteouts: true)
                    try w.addFile(CheckpointArchiveLayout.rootfsDiff, from: diff)
                    if !deleted.isEmpty { try w.addBytes(CheckpointArchiveLayout.deletedFiles, try Self.prettyJSON(deleted)) }
                }
                if FS.isMountPoint(p.shm(c.id)) {
                    let shm = scratch + "/" + CheckpointArchiveLayout.devShm
                    try InnerTar.write(p.shm(c.id), to: shm, whiteouts: false)
                    try w.addFile(CheckpointArchiveLayout.devShm, from: shm)
                }
                // Each volume's contents as podman exports them (`volumes/NAME.tar`), as they are now.
                for name in Set(uses.map(\.name)).sorted() {
                    let tar = scratch + "/volume.tar"
                    try InnerTar.write(volumeStore.data(name), to: tar, whiteouts: false)
                    try w.addFile(CheckpointArchiveLayout.volumesDirectory + "/" + name + ".tar", from: tar)
                    unlink(tar)
                }
                if FS.exists(source + "/" + CheckpointMetadata.file) {
                    try w.addFile(CheckpointArchiveLayout.cryoCheckpoint, from: source + "/" + CheckpointMetadata.file)
                }
                try w.finish()
                for f in [CheckpointArchiveLayout.rootfsDiff, CheckpointArchiveLayout.devShm] { unlink(scratch + "/" + f) }
                return out
            }
        } catch {
            await removeOffActor(scratch)
            throw EngineError.internalError("exporting checkpoint \(name) of container \(c.name): \(error)")
        }
    }

    static let exportedCheckpointFile = "checkpoint.tar"

    /// Removes what `exportCheckpoint`, `saveImages` or `exportContainer` returned (the file
    /// and its scratch directory).
    public nonisolated func discardExport(_ file: String) {
        guard [Self.exportedCheckpointFile, Self.savedImagesFile, Self.exportedRootfsFile].contains(where: { file.hasSuffix("/" + $0) })
        else { return }
        try? FS.removeAll(FS.parent(file))
    }

    /// Makes a new container from a checkpoint archive (cryo's or podman's) and restores it:
    /// the archive is unpacked and checked (digests, names, types, limits) before anything
    /// is created; the new container gets its own ID, name, address and ports, and its
    /// hostname (unless one was chosen) and /etc files are its own.
    public func importCheckpoint(archive: String, _ opts: CheckpointImportOptions) async throws -> CheckpointImportReport {
        let staging = try await archiveScratch("imports")
        return try await removingAfter(staging) { try await importCheckpoint(archive: archive, opts, staging: staging) }
    }

    private func importCheckpoint(archive: String, _ opts: CheckpointImportOptions, staging: String) async throws -> CheckpointImportReport {
        let store = images
        let extracted: ExtractedCheckpointArchive
        do {
            extracted = try await blocking {
                // The image extraction limit (--image-extract-limit, else the free space) bounds an import too.
                let limit = store.extractionBudget().limit
                return try CheckpointArchiveReader.extract(archive, into: staging, limits: ArchiveLimits(maxBytes: limit))
            }
        } catch let e as ArchiveError {
            // The archive's fault (invalid-archive, 400) or cryod's own while unpacking (500).
            throw CryoFailure(e.code == .internal ? "unpacking the checkpoint archive" : "checkpoint archive refused", cause: e)
        }
        // Reads the archive's members and the image store: on the pool.
        let plan = try await blocking { try self.importPlan(extracted, opts) }
        var pieces = NewContainerPieces(
            imageDir: extracted.path(CheckpointArchiveLayout.checkpointDirectory),
            rootfsDiff: extracted.has(CheckpointArchiveLayout.rootfsDiff) ? extracted.path(CheckpointArchiveLayout.rootfsDiff) : nil,
            devShm: extracted.has(CheckpointArchiveLayout.devShm) ? extracted.path(CheckpointArchiveLayout.devShm) : nil)
        // The volumes' contents, by where they are mounted (an anonymous volume gets a new name here).
        for (name, destination) in plan.metadata.volumes ?? [:] {
            let member = CheckpointArchiveLayout.volumesDirectory + "/" + name + ".tar"
            if (try? VolumeStore.validate(name)) != nil, extracted.has(member) { pieces.volumes[destination] = extracted.path(member) }
        }
        let id = try await restoreAsNewContainer(plan, pieces, ip: opts.ip, what: "the imported checkpoint")
        return CheckpointImportReport(Id: id, Name: plan.name, Verified: extracted.verified, Source: plan.source)
    }

    /// What a new container is made of, wherever it came from (an unpacked archive, or a
    /// local checkpoint and its source's upper directory).
    struct NewContainerPieces {
        /// CRIU's images, the new container's own: its utsns image is rewritten in place.
        var imageDir: String
        /// The rootfs changes as a tar with overlay whiteouts (`rootfs-diff.tar`), if any.
        var rootfsDiff: String?
        /// /dev/shm's files as a tar, if any.
        var devShm: String?
        /// Volume contents as tars, by destination: unpacked into the new container's volumes.
        var volumes: [String: String] = [:]
    }

    /// The shared core of import, clone and fork: creates the container `plan` describes,
    /// puts its rootfs changes and /dev/shm back, gives CRIU's UTS image its hostname and
    /// restores it. Anything made is removed again when a step fails.
    func restoreAsNewContainer(_ plan: ImportPlan, _ pieces: NewContainerPieces, ip: String?, what: String) async throws -> String {
        let id = try await createForRestore(name: plan.name, plan.request, imageDir: pieces.imageDir, what: what)
        try await restoreInto(id, plan, pieces, ip: ip, what: what)
        return id
    }

    /// The new container a restore fills, made before its images may even exist (a fork
    /// makes it while the source is dumped). Born with its operation (one durable write): a
    /// cryod killed before the restore ran leaves a record its restart removes, never a
    /// half-made container. Its network namespace is made too, off the restore's path.
    func createForRestore(name: String, _ request: CreateContainerRequest, imageDir: String, what: String) async throws -> String {
        let op = PendingOperation(kind: .restoreNew, checkpoint: what, directory: imageDir, began: rfc3339Now())
        let id = try await create(name: name, request) { $0.operation = op }
        await faultPoint("restore-new-created")
        if (try? resolve(id))?.hostConfig.NetworkMode != "host" {   // as `launch` decides
            let netns = paths.netns(id)
            do {
                try await blocking { try NetworkNamespace.ensure(at: netns) }
            } catch {
                try? await removeNow(id)
                throw EngineError.internalError("restoring \(what) as container \(name) failed (nothing was kept): \(error)")
            }
        }
        Trace.mark("restore-new \(id.prefix(12)): created")
        return id
    }

    /// Fills container `id` (made by `createForRestore`) with `pieces` and restores it; the
    /// container is removed again when a step fails.
    func restoreInto(_ id: String, _ plan: ImportPlan, _ pieces: NewContainerPieces, ip: String?, what: String) async throws {
        let p = paths
        let store = images
        let volumeStore = volumes
        do {
            let c0 = try resolve(id)
            try await blocking {
                let upper = p.upper(id)
                try FS.mkdirAll(upper, mode: 0o755)
                let budget = store.extractionBudget()
                if let diff = pieces.rootfsDiff { try InnerTar.extract(diff, into: upper, budget: budget) }
                try InnerTar.applyDeletions(plan.deleted, upper: upper)
                try Self.addMissingBinds(plan.extraBinds, bundle: p.bundle(id), holder: p.containerDir(id) + "/imported-mounts")
                // The root's mode as the images recorded it (CRIU checks it; another engine's
                // container may have had the image's own, e.g. 0555): an overlay root takes the
                // upper directory's.
                if let mode = try DumpedRootMode.of(pieces.imageDir), mode & S_IFMT == S_IFDIR, mode & 0o7777 != 0o755 {
                    try sys(chmod(upper, mode_t(mode & 0o7777)), "chmod", upper)
                }
                try ShmMount.prepare(p.shm(id), fresh: true, size: c0.hostConfig.ShmSize ?? 0)
                if let shm = pieces.devShm { try InnerTar.extract(shm, into: p.shm(id), budget: budget) }
                for v in c0.volumes ?? [] {
                    guard let tar = pieces.volumes[v.destination] else { continue }
                    // As podman, an existing volume with contents is not overwritten.
                    guard volumeStore.isEmpty(v.name) else {
                        throw EngineError.conflict("volume \(v.name) already exists and is not empty: the archive's contents for \(v.destination) are not put over it; remove the volume or import elsewhere")
                    }
                    try InnerTar.extract(tar, into: volumeStore.data(v.name), budget: budget)
                }
                // The new container's own hostname from its first instruction: CRIU restores
                // the UTS namespace as it was dumped.
                if let h = c0.config.Hostname, !h.isEmpty {
                    try UTSNamespaceImage.setHostname(h, imageDir: pieces.imageDir)
                }
            }
            let imageDir = pieces.imageDir
            let holdsNetns = try await blocking { Runtime.imagesHoldNetworkNamespace(imageDir) }
            let c = try resolve(id)
            var restore = Self.restorePlan(c, checkpoint: imageDir, metadata: plan.metadata,
                                           workPath: p.containerDir(id) + "/restore-work",
                                           imagesHoldNetworkNamespace: { holdsNetns })
            // A new container on a new address holds no established TCP connection (refused
            // above): no packet can upset its sockets before its tasks run, so its fresh
            // namespace is not locked (making and removing the nft table costs ~5 ms of a
            // fork or clone).
            if !restore.tcpEstablished, restore.network.locker == .cryo { restore.network.locker = .nobody }
            try await withLock(id) {
                try await launch(c, restore: restore, restoreIP: ip, restorePorts: nil, restoreMAC: nil)
            }
            await faultPoint("restore-new-running")
            endOperation(id)
        } catch {
            try? await removeNow(id)
            throw EngineError.internalError("restoring \(what) as container \(plan.name) failed (nothing was kept): \(error)")
        }
    }

    struct ImportPlan {
        var name: String
        var request: CreateContainerRequest
        var metadata: CheckpointMetadata
        var deleted: [String]
        var source: String
        /// Bind mounts the dumping engine had and cryo's spec lacks (podman's
        /// /run/.containerenv): CRIU needs every external mount of the images mapped.
        var extraBinds: [String] = []
    }

    /// Everything decided and checked before the container is created.
    nonisolated func importPlan(_ x: ExtractedCheckpointArchive, _ opts: CheckpointImportOptions) throws -> ImportPlan {
        func read<T: Decodable>(_ member: String, _ t: T.Type) throws -> T {
            do { return try JSONDecoder().decode(T.self, from: Data(try FS.readBytes(x.path(member)))) } catch {
                throw EngineError.bad("checkpoint archive refused: \(member) cannot be read: \(error)")
            }
        }
        let dump = try read(CheckpointArchiveLayout.configDump, ConfigDump.self)
        var req: CreateContainerRequest
        var sourceName: String
        let source: String
        var extraBinds: [String] = []
        if x.has(CheckpointArchiveLayout.cryoContainer) {
            let a = try read(CheckpointArchiveLayout.cryoContainer, ArchivedContainer.self)
            req = newContainerRequest(a)
            sourceName = a.name
            source = "cryo"
        } else {
            let spec = try read(CheckpointArchiveLayout.specDump, SpecDumpSummary.self)
            var config = ContainerConfig()
            config.Image = dump.rootfsImageName ?? dump.rootfsImage
            if let name = config.Image, (try? images.inspect(name)) == nil,
               let imageID = dump.rootfsImageID, (try? images.inspect(imageID)) != nil { config.Image = imageID }
            config.Entrypoint = spec.process?.args
            config.Cmd = []
            config.Env = spec.process?.env
            config.WorkingDir = spec.process?.cwd
            config.Tty = spec.process?.terminal
            req = CreateContainerRequest(config: config, hostConfig: HostConfig())
            sourceName = dump.name
            source = "podman"
            extraBinds = (spec.mounts ?? []).filter(\.isBind).map(\.destination)
        }
        guard let image = req.config.Image, !image.isEmpty, (try? images.inspect(image)) != nil else {
            throw EngineError(.notFound, "the checkpoint's image \(dump.rootfsImageName ?? "?") (id \(dump.rootfsImageID ?? "?")) is not in cryo's image store: load it first (cryo load)")
        }
        let metadata = x.has(CheckpointArchiveLayout.cryoCheckpoint)
            ? try read(CheckpointArchiveLayout.cryoCheckpoint, CheckpointMetadata.self)
            : CheckpointMetadata(tcpEstablished: false)
        try Self.refuseTCP(metadata)
        Self.apply(opts, to: &req)
        let deleted = x.has(CheckpointArchiveLayout.deletedFiles) ? try read(CheckpointArchiveLayout.deletedFiles, [String].self) : []
        for d in deleted {
            do { _ = try CheckpointArchiveReader.memberName(String(d.drop(while: { $0 == "/" }))) } catch let e as ArchiveError {
                throw CryoFailure("checkpoint archive refused: deleted.files", cause: e)
            }
        }
        for tar in [CheckpointArchiveLayout.rootfsDiff, CheckpointArchiveLayout.devShm] where x.has(tar) {
            do { try InnerTar.check(x.path(tar), member: tar) } catch let e as ArchiveError {
                throw CryoFailure("checkpoint archive refused", cause: e)
            }
        }
        var plan = ImportPlan(name: try Names.validate(opts.name ?? sourceName), request: req, metadata: metadata, deleted: deleted, source: source)
        plan.extraBinds = extraBinds
        return plan
    }

    /// The create request of a new container made from cryo's description of another one.
    /// Reads the image store: pool only.
    nonisolated func newContainerRequest(_ a: ArchivedContainer) -> CreateContainerRequest {
        var req = CreateContainerRequest(config: a.config, hostConfig: a.hostConfig)
        // The source's default hostname (its short ID) is not the clone's.
        if req.config.Hostname == String(a.id.prefix(12)) { req.config.Hostname = nil }
        // Nor is its MAC address: the clone's interface gets its own.
        req.config.MacAddress = nil
        // The image by its name if that is still the same image here, else by its ID.
        if (try? images.inspect(a.imageRef))?.id.description != a.imageID, (try? images.inspect(a.imageID)) != nil {
            req.config.Image = a.imageID
        }
        return req
    }

    nonisolated static func refuseTCP(_ metadata: CheckpointMetadata) throws {
        if metadata.tcpEstablished {
            throw EngineError.bad("the checkpoint holds established TCP connections: a new container with its own address cannot take them over (make the checkpoint without --tcp-established)")
        }
    }

    /// The caller's network, address and ports for the new container.
    nonisolated static func apply(_ opts: CheckpointImportOptions, to req: inout CreateContainerRequest) {
        if let n = opts.network, !n.isEmpty { req.hostConfig.NetworkMode = n }
        if let ip = opts.ip, !ip.isEmpty {
            req.networkingConfig = NetworkingConfig(EndpointsConfig: [req.hostConfig.NetworkMode ?? "default": .init(IPAMConfig: .init(IPv4Address: ip))])
        }
        if let ports = opts.portBindings { req.hostConfig.PortBindings = ports }
    }

    /// Adds to the bundle's spec an empty bind mount for each destination it lacks (a file
    /// when its name has a dot, else a directory), so CRIU can map the images' external mounts.
    nonisolated static func addMissingBinds(_ destinations: [String], bundle: String, holder: String) throws {
        guard !destinations.isEmpty else { return }
        let path = bundle + "/config.json"
        var spec = try JSONDecoder().decode(Spec.self, from: Data(try FS.readBytes(path)))
        var mounts = spec.mounts ?? []
        let have = Set(mounts.map(\.destination))
        for (i, dest) in destinations.enumerated() where !have.contains(dest) {
            _ = try CheckpointArchiveReader.memberName(String(dest.drop(while: { $0 == "/" })))
            try FS.mkdirAll(holder, mode: 0o700)
            let source = holder + "/\(i)"
            let last = dest.split(separator: "/").last ?? ""
            if last.contains(".") { try FS.atomicWrite(source, [], mode: 0o644, durable: false) } else { try FS.mkdirAll(source, mode: 0o755) }
            mounts.append(Spec.Mount(destination: dest, type: "bind", source: source, options: ["bind", "rprivate"]))
        }
        spec.mounts = mounts
        try FS.atomicWrite(path, Array(try JSONEncoder().encode(spec)), mode: 0o600, durable: false)
    }

    // MARK: the dumps

    nonisolated static func configDump(_ c: StoredContainer, checkpointDir: String) -> ConfigDump {
        var d = ConfigDump(id: c.id, name: c.name)
        let hex = c.imageID.hasPrefix("sha256:") ? String(c.imageID.dropFirst(7)) : c.imageID
        d.rootfsImage = c.imageRef
        d.rootfsImageName = c.imageRef
        d.RawImageName = c.imageRef
        d.rootfsImageID = hex
        d.rootfsImageRef = hex
        d.runtime = "cryo-runtime"
        d.createdTime = c.created
        var st = stat()
        if stat(checkpointDir + "/inventory.img", &st) == 0 { d.checkpointedTime = utcTime(st.st_mtim.tv_sec) }
        d.restoredTime = "0001-01-01T00:00:00Z"
        d.restored = false
        let ports = c.endpoint?.ports ?? c.portMappings ?? []
        if !ports.isEmpty {
            d.newPortMappings = ports.map { .init(host_ip: $0.hostIP, container_port: UInt16(clamping: $0.containerPort),
                                                  host_port: UInt16(clamping: $0.hostPort), protocol: $0.protocol) }
        }
        return d
    }

    nonisolated static func networkStatus(_ e: Attachment) -> NetworkStatus {
        [e.network: NetworkStatusBlock(interfaces: [e.interface.isEmpty ? "eth0" : e.interface: .init(
            subnets: [.init(ipnet: "\(e.ip)/\(e.prefixLength)", gateway: e.gateway.isEmpty ? nil : e.gateway)],
            mac_address: e.mac.isEmpty ? nil : e.mac)])]
    }

    /// The bundle's config.json, annotated so checkpointctl shows it with podman's view
    /// (`io.container.manager: libpod`: name, image, addresses from config.dump and
    /// network.status), says who wrote it, and CRI-O can restore it.
    nonisolated static func specDump(_ configJSON: String, _ c: StoredContainer) throws -> [UInt8] {
        var spec = try JSONDecoder().decode(Spec.self, from: Data(try FS.readBytes(configJSON)))
        var a = spec.annotations ?? [:]
        a["io.container.manager"] = "libpod"
        a["org.criu.checkpoint.engine.name"] = "cryo"
        a["org.criu.checkpoint.container.name"] = c.name
        a["org.criu.checkpoint.rootfsImageName"] = c.imageRef
        // CRI-O's restore (archive or checkpoint image) reads this as a JSON map of the
        // container's CRI annotations and fails without it; a cryo container has none.
        a["io.kubernetes.cri-o.Annotations"] = "{}"
        spec.annotations = a
        return try prettyJSON(spec)
    }

    nonisolated static func utcTime(_ seconds: Int) -> String {
        var t = seconds
        var tmv = tm()
        gmtime_r(&t, &tmv)
        func pad(_ v: Int32, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        return "\(pad(tmv.tm_year + 1900, 4))-\(pad(tmv.tm_mon + 1, 2))-\(pad(tmv.tm_mday, 2))T\(pad(tmv.tm_hour, 2)):\(pad(tmv.tm_min, 2)):\(pad(tmv.tm_sec, 2))Z"
    }

    nonisolated static func prettyJSON<T: Encodable>(_ v: T) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try e.encode(v))
    }
}
