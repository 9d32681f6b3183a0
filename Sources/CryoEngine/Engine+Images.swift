import CryoImages
import CryoLinux
import FoundationEssentials
import Glibc

extension Engine {
    func imageOrNotFound(_ ref: String) throws -> StoredImage {
        do { return try images.inspect(ref) } catch { throw EngineError.noSuchImage(ref) }
    }

    public func imageSummaries() throws -> [ImageSummary] {
        try images.list().map { img in
            let cfg = try? images.config(of: img)
            return ImageSummary(Id: img.id.description, ParentId: "", RepoTags: img.repoTags, RepoDigests: img.repoDigests ?? [],
                                Created: Int64(cfg?.created.flatMap(LogReader.unixTime) ?? 0), Size: layerSize(img),
                                SharedSize: -1, Labels: cfg?.config?.Labels ?? [:],
                                Containers: allRecords.filter { $0.imageID == img.id.description }.count)
        }
    }

    public func inspectImage(_ ref: String) throws -> ImageInspect {
        let img = try imageOrNotFound(ref)
        let cfg = try images.config(of: img)
        var c = ContainerConfig()
        c.User = cfg.config?.User
        c.Env = cfg.config?.Env
        c.Cmd = cfg.config?.Cmd
        c.Entrypoint = cfg.config?.Entrypoint
        c.WorkingDir = cfg.config?.WorkingDir
        c.Labels = cfg.config?.Labels
        c.StopSignal = cfg.config?.StopSignal
        return ImageInspect(Id: img.id.description, RepoTags: img.repoTags, RepoDigests: img.repoDigests ?? [], Created: cfg.created ?? "",
                            Architecture: cfg.architecture ?? "amd64", Os: cfg.os ?? "linux", Size: layerSize(img), Config: c,
                            RootFS: .init(Type: "layers", Layers: img.layers.map(\.description)))
    }

    /// Bytes in the image's unpacked layers (`du`-like, apparent sizes).
    func layerSize(_ img: StoredImage) -> Int64 {
        var total: Int64 = 0
        for l in img.layers { total += Self.treeSize(images.layerPath(l)) }
        return total
    }

    static func treeSize(_ path: String) -> Int64 {
        var st = stat()
        guard lstat(path, &st) == 0 else { return 0 }
        if st.st_mode & S_IFMT != S_IFDIR { return Int64(st.st_size) }
        var total: Int64 = 0
        for name in (try? FS.listDirectory(path)) ?? [] { total += treeSize(path + "/" + name) }
        return total
    }

    public func removeImage(_ ref: String, force: Bool) async throws -> [ImageDeleteItem] {
        let img = try imageOrNotFound(ref)
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
        return items
    }

    /// `docker tag`: `target` ("name:tag") names the image `source` names.
    public func tagImage(_ source: String, as target: String) async throws {
        _ = try imageOrNotFound(source)
        let store = images
        _ = try await blocking { try store.tag(source, as: target) }
    }

    public func loadImages(archive: String) async throws -> [StoredImage] {
        let store = images
        do {
            return try await blocking { try store.load(archive: archive) }
        } catch {
            // The archive's fault is a 400, cryod's own (no space, I/O error) a 500.
            throw CryoFailure("loading the image archive failed", cause: error)
        }
    }

    public func importImage(archive: String, reference: String?) async throws -> StoredImage {
        let store = images
        do {
            return try await blocking { try store.importRootfs(archive: archive, reference: reference) }
        } catch {
            throw CryoFailure("importing the rootfs tarball failed", cause: error)
        }
    }
}
