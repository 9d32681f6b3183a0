import CryoImages
import CryoLinux
import FoundationEssentials
import Glibc

extension Engine {
    /// The image `ref` names, read on the pool (the store reads its index from disk).
    nonisolated func imageOrNotFound(_ ref: String) async throws -> StoredImage {
        let store = images
        do { return try await blocking { try store.inspect(ref) } } catch { throw EngineError.noSuchImage(ref) }
    }

    public func imageSummaries() async throws -> [ImageSummary] {
        let store = images
        // The store's index, configs and layer sizes are read on the pool; only the count of
        // the containers using each image is the actor's.
        let found = try await blocking { () -> [(StoredImage, ImageConfiguration?, Int64)] in
            try store.list().map { img in (img, try? store.config(of: img), Self.layerSize(img, store)) }
        }
        return found.map { img, cfg, size in
            ImageSummary(Id: img.id.description, ParentId: "", RepoTags: img.repoTags, RepoDigests: img.repoDigests ?? [],
                         Created: Int64(cfg?.created.flatMap(LogReader.unixTime) ?? 0), Size: size,
                         SharedSize: -1, Labels: cfg?.config?.Labels ?? [:],
                         Containers: allRecords.filter { $0.imageID == img.id.description }.count)
        }
    }

    public nonisolated func inspectImage(_ ref: String) async throws -> ImageInspect {
        let img = try await imageOrNotFound(ref)
        let store = images
        let (cfg, size) = try await blocking { (try store.config(of: img), Self.layerSize(img, store)) }
        var c = ContainerConfig()
        c.User = cfg.config?.User
        c.Env = cfg.config?.Env
        c.Cmd = cfg.config?.Cmd
        c.Entrypoint = cfg.config?.Entrypoint
        c.WorkingDir = cfg.config?.WorkingDir
        c.Labels = cfg.config?.Labels
        c.StopSignal = cfg.config?.StopSignal
        c.Healthcheck = cfg.config?.Healthcheck
        c.ExposedPorts = cfg.config?.ExposedPorts
        c.Volumes = cfg.config?.Volumes
        return ImageInspect(Id: img.id.description, RepoTags: img.repoTags, RepoDigests: img.repoDigests ?? [], Created: cfg.created ?? "",
                            Architecture: cfg.architecture ?? "amd64", Os: cfg.os ?? "linux", Size: size, Config: c,
                            RootFS: .init(Type: "layers", Layers: img.layers.map(\.description)))
    }

    /// `docker history`: the image's build steps, newest first (see `ImageHistory`).
    public nonisolated func imageHistory(_ ref: String) async throws -> [ImageHistoryItem] {
        let img = try await imageOrNotFound(ref)
        let store = images
        let (cfg, sizes) = try await blocking { (try store.config(of: img), img.layers.map { Self.treeSize(store.layerPath($0)) }) }
        return ImageHistory.items(imageID: img.id.description, tags: img.repoTags, config: cfg, layerSizes: sizes)
    }

    /// Bytes in the image's unpacked layers (`du`-like, apparent sizes). Disk I/O: pool only.
    static func layerSize(_ img: StoredImage, _ store: ImageStore) -> Int64 {
        var total: Int64 = 0
        for l in img.layers { total += treeSize(store.layerPath(l)) }
        return total
    }

    static func treeSize(_ path: String) -> Int64 {
        OffActorCheck.check("lstat", path)
        var st = stat()
        guard lstat(path, &st) == 0 else { return 0 }
        if st.st_mode & S_IFMT != S_IFDIR { return Int64(st.st_size) }
        var total: Int64 = 0
        for name in (try? FS.listDirectory(path)) ?? [] { total += treeSize(path + "/" + name) }
        return total
    }

    public func removeImage(_ ref: String, force: Bool) async throws -> [ImageDeleteItem] {
        let img = try await imageOrNotFound(ref)
        // Checked after the lookup's await, on the actor: a container created from the image
        // after this check is the same race Docker has (the store removes under its flock).
        let users = allRecords.filter { $0.imageID == img.id.description }
        // Removing one tag of several never touches the image itself.
        let isTag = img.repoTags.contains(ImageReference.normalize(ref))
        if let user = users.first, !(isTag && img.repoTags.count > 1) {
            if !force || user.isRunning {
                throw EngineError.conflict("conflict: unable to remove repository reference \"\(ref)\" (must force) - container \(user.id.prefix(12)) is using its referenced image \(img.id.hex.prefix(12))")
            }
        }
        let store = images
        let removal = try await blocking { try store.remove(ref) }
        var items = removal.untagged.map { ImageDeleteItem(Untagged: $0, Deleted: nil) }
        if let d = removal.deletedImage { items.append(ImageDeleteItem(Untagged: nil, Deleted: d.description)) }
        for t in removal.untagged { events.emit("image", "untag", id: img.id.description, attributes: ["name": t]) }
        if let d = removal.deletedImage { events.emit("image", "delete", id: d.description, attributes: ["name": ref]) }
        return items
    }

    /// `docker tag`: `target` ("name:tag") names the image `source` names.
    public func tagImage(_ source: String, as target: String) async throws {
        let img = try await imageOrNotFound(source)
        let store = images
        _ = try await blocking { try store.tag(source, as: target) }
        events.emit("image", "tag", id: img.id.description, attributes: ["name": target])
    }

    public func loadImages(archive: String) async throws -> [StoredImage] {
        let store = images
        do {
            let loaded = try await blocking { try store.load(archive: archive) }
            for i in loaded { events.emit("image", "load", id: i.id.description, attributes: ["name": i.repoTags.first ?? i.id.description]) }
            return loaded
        } catch {
            // The archive's fault is a 400, cryod's own (no space, I/O error) a 500.
            throw CryoFailure("loading the image archive failed", cause: error)
        }
    }

    public func importImage(archive: String, reference: String?) async throws -> StoredImage {
        let store = images
        do {
            let i = try await blocking { try store.importRootfs(archive: archive, reference: reference) }
            events.emit("image", "import", id: i.id.description, attributes: ["name": reference ?? i.id.description])
            return i
        } catch {
            throw CryoFailure("importing the rootfs tarball failed", cause: error)
        }
    }
}
