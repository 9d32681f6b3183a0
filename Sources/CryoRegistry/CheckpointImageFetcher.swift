import CryoArchive
import CryoImages
import CryoLinux
import FoundationEssentials
import NIOPosix

/// Fetches a checkpoint image's one layer for a restore (nothing goes into the image store):
/// the manifest (for this platform when the reference names an index), refused unless it is
/// annotated as a checkpoint image; the config, verified by its digest; the layer, streamed
/// to a file and verified by its digest and by the config's diff_id.
public struct CheckpointImageFetcher: Sendable {
    public let client: RegistryClient

    public init(client: RegistryClient) { self.client = client }

    public struct Fetched: Sendable {
        /// The layer blob (a tar, maybe compressed): a checkpoint archive.
        public var layer: String
        public var manifestDigest: Digest
        public var annotations: [String: String]
    }

    /// Downloads `ref`'s checkpoint layer into `dir` (an empty private directory). `limit`
    /// bounds the layer's size and what a compressed layer may unpack to while its diff_id
    /// is checked.
    public func fetch(_ ref: RegistryReference, credentials: RegistryCredentials, into dir: String, limit: Int64) async throws -> Fetched {
        let shown = ref.familiarTagged ?? ref.familiarDigested ?? ref.familiarName
        let session = try await client.session(for: ref, credentials: credentials)
        let top = try await session.fetchManifest(ref.manifestReference)
        if let wanted = ref.digest, wanted != top.digest {
            throw CryoFailure(.invalidArgument, "the registry sent manifest \(top.digest) for \(shown): digests differ; nothing was restored")
        }
        var manifestDigest = top.digest
        let manifest: ImageManifest
        switch try ManifestDocument.decode(top.bytes, contentType: top.contentType) {
        case .image(let m):
            manifest = m
        case .index(let index):
            // containerd's own checkpoint form: an index of CRIU tars, not a layer to import.
            if index.annotations?[CheckpointImage.Annotation.criuContainerName] != nil {
                throw CryoFailure(.unsupported, "\(shown) is a containerd checkpoint index (annotation \(CheckpointImage.Annotation.criuContainerName) on the index): cryo restores CRI-O's and podman's one-layer checkpoint images only")
            }
            let picked = try await session.platformManifest(from: index, platform: .host, inWhat: "\(shown)'s index",
                                                            outcome: "nothing was restored")
            manifest = picked.manifest
            manifestDigest = picked.digest
        }
        let layer = try CheckpointImage.checkpointLayer(manifest, ref: shown)
        let configDigest = try Digest(manifest.config.digest)
        let configBytes = try await session.fetchSmallBlob(configDigest)
        let config: ImageConfiguration
        do { config = try JSONDecoder().decode(ImageConfiguration.self, from: Data(configBytes)) } catch {
            throw CryoFailure(.invalidArgument, "the image config \(configDigest) of \(shown) is not a valid image config: \(error)")
        }
        guard config.rootfs.diff_ids.count == 1, let diffID = try? Digest(config.rootfs.diff_ids[0]) else {
            throw CryoFailure(.invalidArgument, "layers from manifest don't match image configuration: \(shown)'s config lists \(config.rootfs.diff_ids.count) diff_ids for its one layer")
        }
        // The blob lands on cryod's disk: the same bound as an uploaded archive.
        guard layer.size <= limit else {
            throw CryoFailure(.invalidArgument, "\(shown)'s checkpoint layer is \(layer.size) bytes, more than the \(limit) cryod may unpack (--image-extract-limit, else the free space): refused")
        }
        let layerDigest = try Digest(layer.digest)
        let path = dir + "/layer.blob"
        try await BlobDownload.fetch(session, digest: layerDigest, size: layer.size, to: path,
                                     shortID: String(layerDigest.hex.prefix(12)), emit: { _ in })
        // An uncompressed layer's digest is its diff_id, already checked while downloading.
        if layerDigest != diffID {
            let got = try await NIOThreadPool.singleton.runIfActive { try ArchiveReader.uncompressedDigest(path, limit: limit) }
            guard got == diffID else {
                throw CryoFailure(.invalidArgument, "layers from manifest don't match image configuration: \(shown)'s layer unpacks to \(got), its config says \(diffID)")
            }
        }
        return Fetched(layer: path, manifestDigest: manifestDigest, annotations: manifest.annotations ?? [:])
    }
}
