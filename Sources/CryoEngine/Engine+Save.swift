import CryoArchive
import CryoImages
import CryoLinux
import FoundationEssentials
import Glibc

/// `docker save`: images as one tar in the layout `docker save` writes since Docker 25 — an
/// OCI image layout (oci-layout, index.json, blobs/sha256/…) plus `manifest.json`
/// ([{Config, RepoTags, Layers}]) — which `docker load` (dockerd), `podman load` and
/// `cryo load` read.
///
/// cryod keeps layers unpacked, so each is packed again (`LayerTar`, whiteouts in the OCI
/// form). A layer packed again is not byte for byte the tar it came from: its digest, and
/// then the config's `rootfs.diff_ids` and the image ID, change — unless the layer's tar was
/// made the same way. Only those digest strings change in the config; every other byte of it
/// is kept.
extension Engine {
    static let savedImagesFile = "images.tar"

    /// Writes the archive of the images `refs` name (a name:tag, or an ID) into a scratch
    /// file and returns its path (`discardExport` removes it). Unknown names are a 404 before
    /// anything is written.
    public func saveImages(_ refs: [String]) async throws -> String {
        guard !refs.isEmpty else { throw EngineError.bad("no image given: name one or more images to save") }
        var found: [(ref: String, image: StoredImage)] = []
        for r in refs { found.append((r, try await imageOrNotFound(r))) }
        let scratch = try await archiveScratch("exports")
        let store = images
        let items = found
        do {
            return try await blocking { try Self.writeSaved(items, store: store, scratch: scratch) }
        } catch {
            await removeOffActor(scratch)
            throw CryoFailure("saving \(refs.joined(separator: ", "))", cause: error)
        }
    }

    nonisolated static func writeSaved(_ items: [(ref: String, image: StoredImage)], store: ImageStore, scratch: String) throws -> String {
        let out = scratch + "/" + savedImagesFile
        let w = try CheckpointArchiveWriter(path: out, compression: .none, recordsDigests: false)
        try w.addBytes("oci-layout", Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8))
        try w.addDirectory("blobs")
        try w.addDirectory("blobs/sha256")
        var written: Set<String> = []
        var packed: [Digest: PackedImage.Layer] = [:]
        var index: [Descriptor] = []
        var entries: [DockerArchiveManifestEntry] = []
        func blob(_ digest: Digest, bytes: [UInt8]? = nil, file: String? = nil) throws {
            guard written.insert(digest.hex).inserted else { return }
            if let bytes { try w.addBytes("blobs/sha256/" + digest.hex, bytes) }
            if let file { try w.addFile("blobs/sha256/" + digest.hex, from: file) }
        }
        // One image per distinct ID; its tags are the ones asked for by name.
        var order: [Digest] = []
        var tags: [Digest: [String]] = [:]
        var byID: [Digest: StoredImage] = [:]
        for (ref, img) in items {
            if byID[img.id] == nil { order.append(img.id) }
            byID[img.id] = img
            let t = ImageReference.normalize(ref)
            if img.repoTags.contains(t), !(tags[img.id] ?? []).contains(t) { tags[img.id, default: []].append(t) }
        }
        for id in order {
            let img = byID[id]!
            let packedImage = try packImage(img, store: store, scratch: scratch, packed: &packed)
            for l in packedImage.layers {
                try blob(l.digest, file: l.path)
            }
            try blob(packedImage.configDigest, bytes: packedImage.config)
            try blob(packedImage.manifestDigest, bytes: packedImage.manifest)
            let imageTags = tags[id] ?? []
            for t in imageTags.isEmpty ? [nil] : imageTags.map(Optional.some) {
                var ann: [String: String]?
                if let t {
                    let tag = t.split(separator: ":").last.map(String.init) ?? "latest"
                    ann = ["io.containerd.image.name": t, "org.opencontainers.image.ref.name": tag]
                }
                index.append(Descriptor(mediaType: MediaType.ociManifest, digest: packedImage.manifestDigest.description,
                                        size: Int64(packedImage.manifest.count), annotations: ann))
            }
            entries.append(DockerArchiveManifestEntry(Config: "blobs/sha256/" + packedImage.configDigest.hex,
                                                      RepoTags: imageTags.isEmpty ? nil : imageTags,
                                                      Layers: packedImage.layers.map { "blobs/sha256/" + $0.digest.hex }))
        }
        try w.addBytes("index.json", try jsonBytes(ImageIndex(manifests: index)))
        try w.addBytes("manifest.json", try jsonBytes(entries))
        try w.finish()
        return out
    }

    /// The image packed for travel: each layer tarred once into `scratch` (`packed` keeps
    /// the layers already tarred, shared by several images), the config rewritten to match.
    nonisolated static func packImage(_ img: StoredImage, store: ImageStore, scratch: String,
                                      packed: inout [Digest: PackedImage.Layer]) throws -> PackedImage {
        var layers: [PackedImage.Layer] = []
        for l in img.layers {
            if packed[l] == nil {
                let tar = scratch + "/layer-" + l.hex + ".tar"
                let d = try LayerTar.write(upper: store.layerPath(l), to: tar, skip: [])
                var st = stat()
                guard lstat(tar, &st) == 0 else { throw SyscallError("lstat", tar) }
                packed[l] = PackedImage.Layer(digest: d, size: Int64(st.st_size), path: tar)
            }
            layers.append(packed[l]!)
        }
        return try PackedImage(storedConfig: try FS.readBytes(store.configPath(img.id)), storedLayers: img.layers, layers: layers)
    }

    nonisolated static func jsonBytes<T: Encodable>(_ v: T) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try e.encode(v))
    }
}

extension Engine {
    /// The image `ref` names, packed for `docker push` into a scratch directory (the second
    /// value: `discardPacked` removes it when the push is over).
    public func packImageForPush(_ ref: String) async throws -> (PackedImage, String) {
        let img = try await imageOrNotFound(ref)
        let scratch = try await archiveScratch("exports")
        let store = images
        do {
            let packed = try await blocking { () throws -> PackedImage in
                var layers: [Digest: PackedImage.Layer] = [:]
                return try Self.packImage(img, store: store, scratch: scratch, packed: &layers)
            }
            return (packed, scratch)
        } catch {
            await removeOffActor(scratch)
            throw CryoFailure("packing \(ref) for the push", cause: error)
        }
    }
}

extension Engine {
    /// Removes the scratch directory of `packImageForPush` (only a directory under exports/).
    public nonisolated func discardPacked(_ scratch: String) {
        guard scratch.hasPrefix(paths.root + "/exports/") else { return }
        try? FS.removeAll(scratch)
    }
}
