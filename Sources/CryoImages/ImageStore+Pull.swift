import CryoLinux
import FoundationEssentials
import Glibc

/// What a pull from a registry needs of the store: which layers and configs are here
/// already, a place to unpack downloaded layers, and one step that records the image.
/// Until `commitPull` nothing of the pull is in the store: an interrupted pull leaves only
/// its staging directory, which the caller removes.
extension ImageStore {
    public func hasLayer(_ diffID: Digest) -> Bool { FS.isDirectory(layerPath(diffID)) }
    public func hasConfig(_ id: Digest) -> Bool { FS.exists(configPath(id)) }

    /// Removes what loads, imports and pulls left half-done when the daemon died (tmp/ and
    /// layers/sha256/.tmp-*). Only while nothing else uses the store: at daemon start.
    public func removeStaging() throws {
        let lock = try takeLock()
        defer { close(lock) }
        for name in (try? FS.listDirectory(root + "/tmp")) ?? [] { try FS.removeAll(root + "/tmp/" + name) }
        for name in (try? FS.listDirectory(root + "/layers/sha256")) ?? [] where name.hasPrefix(".tmp-") {
            try FS.removeAll(root + "/layers/sha256/" + name)
        }
    }

    /// A private directory under the store's tmp/ (the same filesystem as layers/).
    public func makePullStaging() throws -> String { try makeStaging() }

    /// Unpacks a downloaded layer blob (plain, gzip or zstd tar; the compression is sniffed,
    /// as dockerd does, not taken from the media type) into `dir`, after checking that its
    /// uncompressed digest is `diffID` (the config's `rootfs.diff_ids` entry).
    public func unpackPulledLayer(_ blob: String, into dir: String, diffID: Digest) throws {
        let budget = extractionBudget()
        let got = try ImageFailure.reading { try ArchiveReader.uncompressedDigest(blob, limit: budget.limit) }
        guard got == diffID else {
            throw CryoFailure(.invalidArchive, "layers from manifest don't match image configuration: the layer unpacks to \(got), the config says \(diffID)")
        }
        try FS.mkdirAll(dir)
        try ImageFailure.reading { try ArchiveReader.extract(blob, into: dir, options: [.overlayWhiteouts, .owners], budget: budget) }
    }

    public struct PullCommit: Sendable {
        public var image: StoredImage
        /// The tag already named this image: nothing changed ("Image is up to date").
        public var upToDate: Bool
    }

    /// Records a pulled image: moves its new layer directories (from `layerDirs`) into
    /// layers/, writes its config and manifest, points `tag` at it (taking the tag from any
    /// other image) and adds `repoDigest` ("name@sha256:…"). All under the store's lock.
    public func commitPull(config: [UInt8], layers: [Digest], layerDirs: [Digest: String],
                           manifest: (digest: Digest, bytes: [UInt8])?, tag: String?, repoDigest: String?) throws -> PullCommit {
        let id = Digest.of(config)
        let lock = try takeLock()
        defer { close(lock) }
        var created: [String] = []
        do {
            for diffID in Set(layers) where !FS.isDirectory(layerPath(diffID)) {
                guard let dir = layerDirs[diffID] else {
                    throw CryoFailure(.internal, "layer \(diffID) of image \(id) was neither in the store nor downloaded")
                }
                try sys(rename(dir, layerPath(diffID)), "rename", "\(dir) -> \(layerPath(diffID))")
                created.append(layerPath(diffID))
            }
            if !FS.exists(configPath(id)) {
                try FS.atomicWrite(configPath(id), config, mode: 0o600)
                created.append(configPath(id))
            }
            if let manifest {
                let path = root + "/manifests/sha256/" + manifest.digest.hex
                if !FS.exists(path) {
                    try FS.atomicWrite(path, manifest.bytes, mode: 0o600)
                    created.append(path)
                }
            }
            var index = try readIndex()
            let upToDate = tag.map { t in index.images.contains { $0.id == id && $0.repoTags.contains(t) } } ?? false
            if let tag {
                for i in index.images.indices where index.images[i].id != id { index.images[i].repoTags.removeAll { $0 == tag } }
            }
            let i: Int
            if let found = index.images.firstIndex(where: { $0.id == id }) {
                i = found
            } else {
                index.images.append(StoredImage(id: id, manifestDigest: manifest?.digest, repoTags: [], layers: layers))
                i = index.images.count - 1
            }
            if let tag, !index.images[i].repoTags.contains(tag) { index.images[i].repoTags.append(tag) }
            if let repoDigest {
                var digests = index.images[i].repoDigests ?? []
                let repo = repoDigest.split(separator: "@").first.map(String.init) ?? repoDigest
                digests.removeAll { $0.hasPrefix(repo + "@") }
                digests.append(repoDigest)
                index.images[i].repoDigests = digests
            }
            if index.images[i].manifestDigest == nil { index.images[i].manifestDigest = manifest?.digest }
            try writeIndex(index)
            return PullCommit(image: index.images[i], upToDate: upToDate)
        } catch {
            for path in created.reversed() { try? FS.removeAll(path) }
            throw error
        }
    }

    /// `docker tag SOURCE TARGET`: `target` ("name:tag") now names the image `source` names,
    /// and no other image.
    public func tag(_ source: String, as target: String) throws -> StoredImage {
        let lock = try takeLock()
        defer { close(lock) }
        var index = try readIndex()
        let (image, _) = try resolve(source, in: index)
        let t = ImageReference.normalize(target)
        for i in index.images.indices { index.images[i].repoTags.removeAll { $0 == t } }
        guard let i = index.images.firstIndex(where: { $0.id == image.id }) else { return image }
        index.images[i].repoTags.append(t)
        try writeIndex(index)
        return index.images[i]
    }
}
