import CryoLinux
import FoundationEssentials
import Glibc

extension ImageStore {
    /// Adds an image that another cryod sent with a migrated container: its config blob
    /// (checked against the image id, which is its digest) and the layers this store lacked,
    /// each already unpacked in a directory of `layerDirs` (renamed into place). Layers the
    /// store has are kept; tags are added unless another image holds them.
    public func adopt(_ image: StoredImage, config: [UInt8], layerDirs: [Digest: String]) throws {
        guard Digest.of(config) == image.id else {
            throw CryoFailure(.invalidArgument, "image config of \(image.id) does not match its digest (got \(Digest.of(config)))")
        }
        let lock = try takeLock()
        defer { close(lock) }
        for diffID in image.layers where !FS.isDirectory(layerPath(diffID)) {
            guard let dir = layerDirs[diffID] else {
                throw CryoFailure(.invalidArgument, "layer \(diffID) of image \(image.id) is missing here and was not sent")
            }
            try sys(rename(dir, layerPath(diffID)), "rename", "\(dir) -> \(layerPath(diffID))")
        }
        if !FS.exists(configPath(image.id)) {
            try FS.atomicWrite(configPath(image.id), config, mode: 0o600)
        }
        var index = try readIndex()
        if !index.images.contains(where: { $0.id == image.id }) {
            var added = image
            added.repoTags = image.repoTags.filter { tag in !index.images.contains { $0.repoTags.contains(tag) } }
            index.images.append(added)
            try writeIndex(index)
        }
    }
}
