import CryoImages
import CryoLinux
import FoundationEssentials

/// A checkpoint as an OCI image, in the form CRI-O (and so Kubernetes) restores: one layer
/// whose root holds the checkpoint archive's members (`checkpoint/`, `config.dump`,
/// `spec.dump`, …), a minimal image config, and manifest annotations that say what it is.
/// CRI-O recognises it by `io.kubernetes.cri-o.annotations.checkpoint.name` on the manifest;
/// the `org.criu.checkpoint.*` keys are the ones checkpointctl writes.
public enum CheckpointImage {
    public enum Annotation {
        static let crioPrefix = "io.kubernetes.cri-o.annotations.checkpoint."
        /// CRI-O's detection key (its value: the checkpointed container's name).
        public static let crioName = crioPrefix + "name"
        public static let crioRawImageName = crioPrefix + "rawImageName"
        public static let crioRootfsImageID = crioPrefix + "rootfsImageID"
        public static let crioRootfsImageName = crioPrefix + "rootfsImageName"
        public static let crioCRIUVersion = crioPrefix + "criu.version"
        /// podman's detection key (`podman container checkpoint --create-image`).
        public static let podmanName = "io.podman.annotations.checkpoint.name"
        /// checkpointctl's (`checkpointctl build`) keys all start with this.
        public static let criuPrefix = "org.criu.checkpoint."
        public static let criuContainerName = criuPrefix + "container.name"
        /// The keys any of which marks a manifest as a checkpoint image, CRI-O's first.
        public static let detection = [crioName, podmanName, criuContainerName]
    }

    /// What cryo knows about the checkpoint and the host it was made on. Empty values are
    /// left out of the annotations rather than written as "".
    public struct Facts: Sendable, Equatable {
        public var containerName: String
        /// The image as the user named it when creating the container.
        public var rawImageName: String
        public var rootfsImageName: String
        /// The image ID, without `sha256:` (CRI-O's and checkpointctl's form).
        public var rootfsImageID: String
        public var criuVersion: String?
        public var engineVersion: String?
        public var runtimeName: String?
        public var hostArch: String
        public var hostKernel: String?
        public var cgroupVersion: String?
        public var distributionName: String?
        public var distributionVersion: String?

        public init(containerName: String, rawImageName: String, rootfsImageName: String, rootfsImageID: String,
                    criuVersion: String? = nil, engineVersion: String? = nil, runtimeName: String? = nil,
                    hostArch: String = "amd64", hostKernel: String? = nil, cgroupVersion: String? = nil,
                    distributionName: String? = nil, distributionVersion: String? = nil) {
            self.containerName = containerName
            self.rawImageName = rawImageName
            self.rootfsImageName = rootfsImageName
            self.rootfsImageID = rootfsImageID.hasPrefix("sha256:") ? String(rootfsImageID.dropFirst(7)) : rootfsImageID
            self.criuVersion = criuVersion
            self.engineVersion = engineVersion
            self.runtimeName = runtimeName
            self.hostArch = hostArch
            self.hostKernel = hostKernel
            self.cgroupVersion = cgroupVersion
            self.distributionName = distributionName
            self.distributionVersion = distributionVersion
        }
    }

    /// The manifest annotations: CRI-O's keys (so CRI-O detects and restores it) and
    /// checkpointctl's `org.criu.checkpoint.*` ones, where cryo knows the value.
    public static func annotations(_ f: Facts) -> [String: String] {
        var a: [String: String] = [:]
        func put(_ key: String, _ value: String?) {
            if let value, !value.isEmpty { a[key] = value }
        }
        put(Annotation.crioName, f.containerName)
        put(Annotation.crioRawImageName, f.rawImageName)
        put(Annotation.crioRootfsImageID, f.rootfsImageID)
        put(Annotation.crioRootfsImageName, f.rootfsImageName)
        put(Annotation.crioCRIUVersion, f.criuVersion)
        let p = Annotation.criuPrefix
        put(p + "engine.name", "cryo")
        put(p + "engine.version", f.engineVersion)
        put(p + "container.name", f.containerName)
        put(p + "rawImageName", f.rawImageName)
        put(p + "rootfsImageUserRequested", f.rawImageName)
        put(p + "rootfsImageName", f.rootfsImageName)
        put(p + "rootfsImageID", f.rootfsImageID)
        put(p + "runtime.name", f.runtimeName)
        put(p + "criu.version", f.criuVersion)
        put(p + "host.arch", f.hostArch)
        put(p + "host.kernel", f.hostKernel)
        put(p + "cgroup.version", f.cgroupVersion)
        put(p + "distribution.name", f.distributionName)
        put(p + "distribution.version", f.distributionVersion)
        return a
    }

    /// The image config: this platform and the one layer's diff_id; nothing to run (the
    /// container's own configuration travels in the layer).
    public static func config(layerDiffID: Digest, architecture: String, created: String?) throws -> [UInt8] {
        let c = ImageConfiguration(created: created, architecture: architecture, os: "linux",
                                   rootfs: .init(diff_ids: [layerDiffID.description]))
        return try canonicalJSON(c)
    }

    /// The OCI manifest naming `config` and the layer, annotated.
    public static func manifest(config: [UInt8], layer: Descriptor, annotations: [String: String]) throws -> [UInt8] {
        let m = ImageManifest(
            config: Descriptor(mediaType: MediaType.ociConfig, digest: Digest.of(config).description, size: Int64(config.count)),
            layers: [layer], annotations: annotations)
        return try canonicalJSON(m)
    }

    /// The detection key that marks `m` as a checkpoint image, or nil for any other image.
    public static func detectionKey(_ m: ImageManifest) -> String? {
        Annotation.detection.first { m.annotations?[$0] != nil }
    }

    /// The checkpoint layer of `m`, or a refusal that says why `ref` cannot be restored:
    /// not a checkpoint image (a normal image is run, not restored), or not one layer.
    public static func checkpointLayer(_ m: ImageManifest, ref: String) throws -> Descriptor {
        guard detectionKey(m) != nil else {
            throw CryoFailure(.invalidArgument, "\(ref) is not a checkpoint image: its manifest has no \(Annotation.crioName) annotation (nor podman's or checkpointctl's); run it with `cryo run` instead")
        }
        guard m.layers.count == 1, let layer = m.layers.first else {
            throw CryoFailure(.invalidArgument, "\(ref) is marked as a checkpoint image but has \(m.layers.count) layers: a checkpoint image has exactly one, the checkpoint archive's files")
        }
        guard MediaType.isCheckpointLayer(layer.mediaType) else {
            throw CryoFailure(.invalidArgument, "\(ref): the checkpoint layer has media type \(layer.mediaType), which is not a tar layer")
        }
        return layer
    }

    static func canonicalJSON<T: Encodable>(_ v: T) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try e.encode(v))
    }
}

extension MediaType {
    /// A tar layer, plain or compressed, OCI's or Docker's (buildah pushes either).
    static func isCheckpointLayer(_ type: String) -> Bool {
        [ociLayer, ociLayerGzip, ociLayerZstd, "application/vnd.docker.image.rootfs.diff.tar.gzip",
         "application/vnd.docker.image.rootfs.diff.tar"].contains(type)
    }
}
