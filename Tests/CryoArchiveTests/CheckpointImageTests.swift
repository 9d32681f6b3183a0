import CryoArchive
import CryoImages
import CryoLinux
import FoundationEssentials
import Testing

/// The checkpoint image's manifest and config, and how a restore tells one from a normal image.
@Suite struct CheckpointImageTests {
    static let facts = CheckpointImage.Facts(
        containerName: "web", rawImageName: "busybox", rootfsImageName: "busybox",
        rootfsImageID: "sha256:" + String(repeating: "ab", count: 32), criuVersion: "4.2.1", engineVersion: "0.1",
        runtimeName: "cryo-runtime", hostKernel: "6.18.0", cgroupVersion: "v2", distributionName: "debian", distributionVersion: "12")

    static func layer() -> Descriptor {
        Descriptor(mediaType: MediaType.ociLayer, digest: Digest.of(Array("layer".utf8)).description, size: 5)
    }

    static func built() throws -> (config: [UInt8], manifest: ImageManifest, bytes: [UInt8]) {
        let config = try CheckpointImage.config(layerDiffID: Digest.of(Array("layer".utf8)), architecture: "amd64", created: "2026-01-01T00:00:00Z")
        let bytes = try CheckpointImage.manifest(config: config, layer: layer(), annotations: CheckpointImage.annotations(facts))
        return (config, try JSONDecoder().decode(ImageManifest.self, from: Data(bytes)), bytes)
    }

    @Test func theAnnotationsAreCRIOsAndCheckpointctls() {
        let a = CheckpointImage.annotations(Self.facts)
        let hex = String(repeating: "ab", count: 32)
        #expect(a["io.kubernetes.cri-o.annotations.checkpoint.name"] == "web")
        #expect(a["io.kubernetes.cri-o.annotations.checkpoint.rawImageName"] == "busybox")
        #expect(a["io.kubernetes.cri-o.annotations.checkpoint.rootfsImageName"] == "busybox")
        // CRI-O's and checkpointctl's image IDs carry no "sha256:".
        #expect(a["io.kubernetes.cri-o.annotations.checkpoint.rootfsImageID"] == hex)
        #expect(a["io.kubernetes.cri-o.annotations.checkpoint.criu.version"] == "4.2.1")
        #expect(a["org.criu.checkpoint.engine.name"] == "cryo")
        #expect(a["org.criu.checkpoint.container.name"] == "web")
        #expect(a["org.criu.checkpoint.rootfsImageID"] == hex)
        #expect(a["org.criu.checkpoint.rootfsImageUserRequested"] == "busybox")
        #expect(a["org.criu.checkpoint.runtime.name"] == "cryo-runtime")
        #expect(a["org.criu.checkpoint.host.arch"] == "amd64")
        #expect(a["org.criu.checkpoint.cgroup.version"] == "v2")
        #expect(a["org.criu.checkpoint.distribution.version"] == "12")
        // Not CRI-O: its version key is not claimed.
        #expect(a["io.kubernetes.cri-o.annotations.checkpoint.cri-o.version"] == nil)
    }

    @Test func unknownValuesAreLeftOutNotEmpty() {
        let a = CheckpointImage.annotations(CheckpointImage.Facts(containerName: "c", rawImageName: "img", rootfsImageName: "img", rootfsImageID: "abc"))
        #expect(a["io.kubernetes.cri-o.annotations.checkpoint.criu.version"] == nil)
        #expect(a["org.criu.checkpoint.host.kernel"] == nil)
        #expect(!a.values.contains(""))
    }

    @Test func theManifestHasOneLayerAndTheConfigItsDiffID() throws {
        let (config, m, bytes) = try Self.built()
        #expect(m.mediaType == MediaType.ociManifest)
        #expect(m.layers == [Self.layer()])
        #expect(m.config.mediaType == MediaType.ociConfig)
        #expect(m.config.digest == Digest.of(config).description)
        #expect(m.config.size == Int64(config.count))
        #expect(m.annotations?[CheckpointImage.Annotation.crioName] == "web")
        let c = try JSONDecoder().decode(ImageConfiguration.self, from: Data(config))
        #expect(c.rootfs.diff_ids == [Digest.of(Array("layer".utf8)).description])
        #expect(c.os == "linux" && c.architecture == "amd64")
        // Canonical bytes: the same inputs give the same digest.
        let again = try CheckpointImage.manifest(config: config, layer: Self.layer(), annotations: CheckpointImage.annotations(Self.facts))
        #expect(again == bytes)
    }

    @Test func aCheckpointImageIsDetectedByCRIOsPodmansOrCheckpointctlsKey() throws {
        var (_, m, _) = try Self.built()
        #expect(CheckpointImage.detectionKey(m) == CheckpointImage.Annotation.crioName)
        #expect(try CheckpointImage.checkpointLayer(m, ref: "r") == Self.layer())
        m.annotations = ["io.podman.annotations.checkpoint.name": "x"]
        #expect(CheckpointImage.detectionKey(m) == "io.podman.annotations.checkpoint.name")
        m.annotations = ["org.criu.checkpoint.container.name": "x"]
        #expect(CheckpointImage.detectionKey(m) == "org.criu.checkpoint.container.name")
        m.layers[0].mediaType = "application/vnd.docker.image.rootfs.diff.tar.gzip"
        #expect(try CheckpointImage.checkpointLayer(m, ref: "r").digest == Self.layer().digest)
    }

    @Test func aNormalImageIsRefusedSayingWhy() throws {
        var (_, m, _) = try Self.built()
        m.annotations = ["org.opencontainers.image.ref.name": "latest"]
        #expect(CheckpointImage.detectionKey(m) == nil)
        let e = #expect(throws: CryoFailure.self) { try CheckpointImage.checkpointLayer(m, ref: "reg/busybox:latest") }
        #expect(e?.description.contains("reg/busybox:latest is not a checkpoint image") == true)
        #expect(e?.description.contains(CheckpointImage.Annotation.crioName) == true)
        m.annotations = nil
        #expect(throws: CryoFailure.self) { try CheckpointImage.checkpointLayer(m, ref: "r") }
    }

    @Test func aCheckpointImageWithOtherThanOneTarLayerIsRefused() throws {
        var (_, m, _) = try Self.built()
        m.layers.append(Self.layer())
        let two = #expect(throws: CryoFailure.self) { try CheckpointImage.checkpointLayer(m, ref: "r") }
        #expect(two?.description.contains("2 layers") == true)
        m.layers = []
        #expect(throws: CryoFailure.self) { try CheckpointImage.checkpointLayer(m, ref: "r") }
        m.layers = [Descriptor(mediaType: "application/vnd.containerd.container.criu.checkpoint.criu.tar", digest: Self.layer().digest, size: 5)]
        let odd = #expect(throws: CryoFailure.self) { try CheckpointImage.checkpointLayer(m, ref: "r") }
        #expect(odd?.description.contains("not a tar layer") == true)
    }
}
