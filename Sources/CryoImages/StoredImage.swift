/// One image known to an `ImageStore`, as recorded in its `images.json`.
public struct StoredImage: Codable, Sendable, Equatable {
    /// The image id: the digest of its config JSON (Docker's convention).
    public var id: Digest
    /// The digest of its OCI manifest, when it came from an OCI layout.
    public var manifestDigest: Digest?
    /// References such as "busybox:latest" (may be empty: a dangling image).
    public var repoTags: [String]
    /// Uncompressed layer digests (diff_ids), bottom layer first.
    public var layers: [Digest]
    /// "name@sha256:…" for images pulled from a registry (the manifest digest there).
    public var repoDigests: [String]?

    public init(id: Digest, manifestDigest: Digest?, repoTags: [String], layers: [Digest]) {
        self.id = id
        self.manifestDigest = manifestDigest
        self.repoTags = repoTags
        self.layers = layers
        self.repoDigests = nil
    }
}

/// The whole `images.json` file.
struct StoreIndexFile: Codable, Sendable {
    var version: Int = 1
    var images: [StoredImage] = []
}

/// Reference parsing helpers: "busybox" means "busybox:latest".
public enum ImageReference {
    public static func normalize(_ ref: String) -> String {
        let lastSlash = ref.lastIndex(of: "/").map { ref.index(after: $0) } ?? ref.startIndex
        if ref[lastSlash...].contains(":") || ref.contains("@") { return ref }
        return ref + ":latest"
    }
}
