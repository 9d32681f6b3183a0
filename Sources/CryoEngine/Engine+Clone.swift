import CryoArchive
import CryoLinux
import CryoRuntime
import FoundationEssentials
import Glibc

/// What a clone or a fork made.
public struct CloneReport: Codable, Sendable {
    public var Id: String
    public var Name: String
    /// The container it was made from.
    public var Source: String
}

/// What `fork` made and how long it took.
public struct ForkReport: Codable, Sendable {
    public var Id: String
    public var Name: String
    public var Source: String
    /// How long the source was frozen (CRIU's frozen time from stats-dump), in ms.
    public var PauseMs: Double?
    /// From the fork's start until the copy was running, in ms.
    public var TimeToRunningMs: Double
}

extension Engine {
    /// Restores checkpoint `checkpoint` of container `source` (a local checkpoint, as
    /// `checkpoint create` made it) as a new container, through the same path as an
    /// archive's import. The checkpoint stays as it was and can be cloned or restored again:
    /// the clone restores from a private copy of the images (hard links, except the utsns
    /// image which gets the clone's hostname). The rootfs changes and /dev/shm are the
    /// source's as they are at clone time (as an export takes them), not as they were
    /// when the checkpoint was made.
    public func cloneCheckpoint(source ref: String, checkpoint: String, dir: String?, _ opts: CheckpointImportOptions) async throws -> CloneReport {
        try Names.validateCheckpoint(checkpoint)
        let c = try resolve(ref)
        let images = try await blocking { () throws -> String in
            let d = try self.checkpointPath(c.id, name: checkpoint, dir: dir)
            guard FS.lstatMode(d) == S_IFDIR, FS.lstatMode(d + "/inventory.img") == S_IFREG else {
                throw EngineError(.notFound, "checkpoint \(checkpoint) does not exist for container \(c.name)")
            }
            return d
        }
        try Self.refuseAnonymousVolumes(c, verb: "clone")
        let id = try await clone(c, images: images, privateImages: false, opts, what: "checkpoint \(checkpoint) of container \(c.name)")
        return CloneReport(Id: id, Name: try resolve(id).name, Source: c.name)
    }

    /// `cryo fork`: the running container goes on, and a copy of it starts beside it as
    /// `name`. A leave-running checkpoint goes into a temporary directory in the
    /// exec-root (/run/cryo: where /run is a tmpfs, the images never touch the disk), the copy is
    /// restored from it, and the directory is removed.
    public func fork(_ ref: String, name: String, _ opts: CheckpointImportOptions) async throws -> ForkReport {
        let began = Monotonic.now()
        Trace.mark("fork: begin")
        let c = try resolve(ref)
        let newName = try Names.validate(name)
        try Self.refuseAnonymousVolumes(c, verb: "fork")
        // Refused before the source is frozen: a clash found after the dump costs a pause for nothing.
        if let other = allRecords.first(where: { $0.name == newName }) {
            throw EngineError.conflict("Conflict. The container name \"/\(newName)\" is already in use by container \"\(other.id)\". You have to remove (or rename) that container to be able to reuse that name.")
        }
        if CheckpointLabels.includesTCP(requested: false, labels: c.config.Labels) {
            throw EngineError.bad("cannot fork container \(c.name): its label io.cryo.checkpoint.tcp-established asks for established TCP connections in every checkpoint, and a copy with its own address cannot take them over")
        }
        let scratch = paths.execRoot + "/forks/" + Names.randomID().prefix(24)
        try await blocking { try FS.mkdirAll(scratch, mode: 0o700) }
        Trace.mark("fork: scratch made")
        var named = opts
        named.name = newName
        let what = "the fork of container \(c.name)"
        let (report, id) = try await removingAfter(scratch) { () async throws -> (CheckpointReport, String) in
            let images = scratch + "/fork"
            let req = try await cloneRequest(c, named)
            // The copy's container (record, bundle, network namespace) is made while the
            // source is dumped: off the path from the freeze to the copy running.
            let made = Task { try await self.createForRestore(name: newName, req, imageDir: images, what: what) }
            let report: CheckpointReport
            do {
                report = try await checkpoint(c.id, name: "fork", dir: nil, exit: false, tcpEstablished: false, fixedTarget: images)
            } catch {
                if let id = try? await made.value { try? await removeNow(id) }
                throw error
            }
            let id = try await made.value
            try await fillClone(id, of: c, req: req, newName: newName, images: report.directory, privateImages: true,
                                named, what: what, scratch: scratch)
            return (report, id)
        }
        return ForkReport(Id: id, Name: newName, Source: c.name,
                          PauseMs: report.criu.map { Double($0.frozenTimeUs) / 1000 }, TimeToRunningMs: began.elapsedMilliseconds)
    }

    /// The create request of a copy of `c` named as `opts` says.
    func cloneRequest(_ c: StoredContainer, _ opts: CheckpointImportOptions) async throws -> CreateContainerRequest {
        let archived = ArchivedContainer(id: c.id, name: c.name, imageRef: c.imageRef, imageID: c.imageID, config: c.config, hostConfig: c.hostConfig)
        var req = try await blocking { self.newContainerRequest(archived) }
        Self.apply(opts, to: &req)
        return req
    }

    /// Makes a new container of `c`'s configuration from the CRIU images in `images` and
    /// `c`'s upper directory and /dev/shm now. With `privateImages` the images are the
    /// caller's to change (fork's temporary checkpoint); else they are linked into a scratch
    /// directory first so the checkpoint itself is left as it was.
    func clone(_ c: StoredContainer, images: String, privateImages: Bool, _ opts: CheckpointImportOptions, what: String) async throws -> String {
        guard let name = opts.name, !name.isEmpty else {
            throw EngineError.bad("a clone needs a name of its own (--name)")
        }
        let req = try await cloneRequest(c, opts)
        let newName = try Names.validate(name)
        // After the await: `create` checks the name again, under no lock, as it always did.
        if let other = allRecords.first(where: { $0.name == newName }) {
            throw EngineError.conflict("Conflict. The container name \"/\(newName)\" is already in use by container \"\(other.id)\". You have to remove (or rename) that container to be able to reuse that name.")
        }
        let scratch = try await archiveScratch("clones")
        return try await removingAfter(scratch) {
            let dir = privateImages ? images : scratch + "/images"
            let id = try await createForRestore(name: newName, req, imageDir: dir, what: what)
            try await fillClone(id, of: c, req: req, newName: newName, images: images, privateImages: privateImages,
                                opts, what: what, scratch: scratch)
            return id
        }
    }

    /// Puts `c`'s rootfs changes and /dev/shm, as they are now, and the images into the new
    /// container `id` (made by `createForRestore`) and restores it; `id` is removed when a
    /// step fails.
    private func fillClone(_ id: String, of c: StoredContainer, req: CreateContainerRequest, newName: String, images: String,
                           privateImages: Bool, _ opts: CheckpointImportOptions, what: String, scratch: String) async throws {
        let p = paths
        let (metadata, pieces, deleted): (CheckpointMetadata, NewContainerPieces, [String])
        do {
            (metadata, pieces, deleted) = try await blocking {
                let metadata = try CheckpointMetadata.load(images)
                try Self.refuseTCP(metadata)
                var imageDir = images
                if !privateImages {
                    imageDir = scratch + "/images"
                    try Self.linkImages(from: images, to: imageDir)
                }
                var pieces = NewContainerPieces(imageDir: imageDir)
                var deleted: [String] = []
                if FS.isDirectory(p.upper(c.id)) {
                    pieces.rootfsDiff = scratch + "/" + CheckpointArchiveLayout.rootfsDiff
                    deleted = try InnerTar.write(p.upper(c.id), to: scratch + "/" + CheckpointArchiveLayout.rootfsDiff, whiteouts: true)
                }
                if FS.isMountPoint(p.shm(c.id)) {
                    pieces.devShm = scratch + "/" + CheckpointArchiveLayout.devShm
                    try InnerTar.write(p.shm(c.id), to: scratch + "/" + CheckpointArchiveLayout.devShm, whiteouts: false)
                }
                return (metadata, pieces, deleted)
            }
        } catch {
            try? await removeNow(id)
            if let e = error as? EngineError { throw e }
            throw EngineError.internalError("cloning \(what): preparing its files failed: \(error)")
        }
        let plan = ImportPlan(name: newName, request: req, metadata: metadata, deleted: deleted, source: "cryo")
        try await restoreInto(id, plan, pieces, ip: opts.ip, what: what)
    }

    /// A private copy of a checkpoint's images: hard links where the file system allows
    /// (CRIU's restore only reads them and writes its log into the work directory), copies
    /// of the utsns image (rewritten in place for the clone's hostname) and across file systems.
    nonisolated static func linkImages(from source: String, to target: String) throws {
        try FS.mkdirAll(target, mode: 0o700)
        for f in try FS.listDirectory(source) where !f.hasPrefix(".") {
            let from = source + "/" + f, to = target + "/" + f
            guard FS.lstatMode(from) == S_IFREG else { continue }
            let rewritten = f.hasPrefix("utsns-")
            if !rewritten && link(from, to) == 0 { continue }
            if !rewritten && errno != EXDEV && errno != EPERM { throw SyscallError("link", to) }
            try copyFile(from, to)
        }
    }

    nonisolated static func copyFile(_ from: String, _ to: String) throws {
        let src = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard src >= 0 else { throw SyscallError("open", from) }
        defer { close(src) }
        let dst = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard dst >= 0 else { throw SyscallError("open", to) }
        defer { close(dst) }
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buf.withUnsafeMutableBytes { read(src, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw SyscallError("read", from) }
            if n == 0 { break }
            try FS.writeAll(fd: dst, Array(buf[0..<n]), what: to)
        }
    }
}

extension Engine {
    /// A copy shares the source's named volumes (as two containers with `-v NAME:` do), but
    /// would get new, empty anonymous ones: refused rather than restored over missing data.
    nonisolated static func refuseAnonymousVolumes(_ c: StoredContainer, verb: String) throws {
        let anon = (c.volumes ?? []).filter(\.anonymous)
        guard !anon.isEmpty else { return }
        throw EngineError(.unsupported, "cannot \(verb) container \(c.name): it has anonymous volumes (at \(anon.map(\.destination).joined(separator: ", "))) whose contents a copy would not get; use named volumes (-v NAME:/path), which a copy shares")
    }
}
