import FoundationEssentials

/// An image from the store packed as it travels (`docker save`, `docker push`): its layers as
/// uncompressed tar files, its config with the diff_ids of those tars, and its OCI manifest.
public struct PackedImage: Sendable {
    public struct Layer: Sendable {
        /// The tar's sha256 (its diff_id and, uncompressed, its blob digest), size and file.
        public var digest: Digest
        public var size: Int64
        public var path: String
        public init(digest: Digest, size: Int64, path: String) {
            self.digest = digest
            self.size = size
            self.path = path
        }
    }

    public var config: [UInt8]
    public var layers: [Layer]
    public var manifest: [UInt8]
    public var configDigest: Digest { Digest.of(config) }
    public var manifestDigest: Digest { Digest.of(manifest) }

    /// An image packed elsewhere (a checkpoint image): its config, layers and manifest as given.
    public init(config: [UInt8], layers: [Layer], manifest: [UInt8]) {
        self.config = config
        self.layers = layers
        self.manifest = manifest
    }

    /// `config` (the stored config, with each stored diff_id that packing changed replaced
    /// by the packed one: every other byte kept) and the manifest naming it and `layers`.
    public init(storedConfig: [UInt8], storedLayers: [Digest], layers: [Layer]) throws {
        var config = storedConfig
        for (old, new) in zip(storedLayers, layers) where old != new.digest {
            config = Self.replacing(old.description, with: new.digest.description, in: config)
        }
        self.config = config
        self.layers = layers
        let manifest = ImageManifest(
            config: Descriptor(mediaType: MediaType.ociConfig, digest: Digest.of(config).description, size: Int64(config.count)),
            layers: layers.map { Descriptor(mediaType: MediaType.ociLayer, digest: $0.digest.description, size: $0.size) })
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        self.manifest = Array(try e.encode(manifest))
    }

    /// `bytes` with every occurrence of `old` replaced by `new` (digest strings in a config).
    static func replacing(_ old: String, with new: String, in bytes: [UInt8]) -> [UInt8] {
        let o = Array(old.utf8), n = Array(new.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == o[0], i + o.count <= bytes.count, bytes[i..<i + o.count].elementsEqual(o) {
                out += n
                i += o.count
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }
}
