import CryoLinux
import Foundation
import Glibc
import CryoTestSupport
import Testing
@testable import CryoImages

@Suite struct ImageStoreTests {
    /// A busybox rootfs layer made with scripts/make-busybox-rootfs.sh.
    static func busyboxLayer(_ s: TempDir, compression: Tar.Compression) throws -> String {
        let path = s.at("busybox.tar" + (compression == .gzip ? ".gz" : compression == .zstd ? ".zst" : ""))
        try Tar.write(path, try BusyboxRootfs.entries.get(), compression: compression)
        return path
    }

    static func appLayer(_ s: TempDir, _ name: String) throws -> String {
        let path = s.at("\(name).tar.gz")
        try Tar.write(path, [.dir("app"), .file("app/\(name)", name), .file("etc/.wh.passwd", "")], compression: .gzip)
        return path
    }

    @Test func loadsDockerSaveAndDeduplicatesLayers() throws {
        let s = try TempDir()
        defer { s.remove() }
        let store = try ImageStore(root: s.at("store"))
        let base = try Self.busyboxLayer(s, compression: .none)
        let a = try Self.appLayer(s, "a"), b = try Self.appLayer(s, "b")
        try ImageBuilder.dockerSave([.init(tags: ["app-a:1"], layers: [base, a])], to: s.at("a.tar"), scratch: s)
        try ImageBuilder.dockerSave([.init(tags: ["app-b:latest", "b2:x"], layers: [base, b])], to: s.at("b.tar"), scratch: s)

        let la = try store.load(archive: s.at("a.tar"))
        let lb = try store.load(archive: s.at("b.tar"))
        #expect(la.count == 1 && lb.count == 1)
        #expect(la[0].layers[0] == lb[0].layers[0])
        #expect(la[0].layers[1] != lb[0].layers[1])
        #expect(try FS.listDirectory(s.at("store/layers/sha256")).count == 3)
        let baseDir = store.layerPath(la[0].layers[0])
        #expect(FS.readlink(baseDir + "/bin/sh") == "busybox")
        #expect(FS.readlink(baseDir + "/usr/bin/seq") == "../../bin/busybox")
        #expect(try Digest.of(file: baseDir + "/bin/busybox") == Digest.of(file: "/bin/busybox"))
        var st = stat()
        #expect(stat(baseDir + "/bin/busybox", &st) == 0 && st.st_mode & 0o777 == 0o755)
        #expect(stat(baseDir + "/tmp", &st) == 0 && st.st_mode & 0o7777 == 0o1777)
        #expect(try store.list().count == 2)
        #expect(try FS.listDirectory(s.at("store/tmp")).isEmpty)

        // lookups: tag, implicit :latest, full id, id prefix with and without "sha256:"
        let id = lb[0].id
        #expect(try store.inspect("app-b").id == id)
        #expect(try store.inspect("b2:x").id == id)
        #expect(try store.inspect(id.description).id == id)
        #expect(try store.inspect(String(id.hex.prefix(12))).id == id)
        #expect(try store.inspect("sha256:" + id.hex.prefix(8)).id == id)
        #expect { try store.inspect("nope") } throws: { "\($0)" == "no such image: nope" }
        let cfg = try store.config(of: store.inspect("app-a:1"))
        #expect(cfg.config?.Cmd == ["/bin/sh"])
        #expect(cfg.config?.Labels == ["test": "yes"])

        // loading again changes nothing
        try store.load(archive: s.at("a.tar"))
        #expect(try store.list().count == 2)
        #expect(try FS.listDirectory(s.at("store/layers/sha256")).count == 3)
    }

    @Test(arguments: [Tar.Compression.gzip, .zstd])
    func loadsOCILayout(compression: Tar.Compression) throws {
        let s = try TempDir()
        defer { s.remove() }
        let store = try ImageStore(root: s.at("store"))
        let base = try Self.busyboxLayer(s, compression: compression)
        try ImageBuilder.ociLayout(.init(tags: ["docker.io/library/busybox:latest"], layers: [base]), to: s.at("oci.tar"),
                                   scratch: s, mediaType: compression == .gzip ? MediaType.ociLayerGzip : MediaType.ociLayerZstd)
        let loaded = try store.load(archive: s.at("oci.tar"))
        #expect(loaded.count == 1)
        #expect(loaded[0].manifestDigest != nil)
        #expect(loaded[0].repoTags == ["docker.io/library/busybox:latest"])
        // the layer is stored under its uncompressed digest (diff_id), whatever the compression
        #expect(loaded[0].layers == [try ArchiveReader.uncompressedDigest(base)])
        #expect(FS.isDirectory(store.layerPath(loaded[0].layers[0]) + "/bin"))
        #expect(FS.exists(s.at("store/manifests/sha256/" + loaded[0].manifestDigest!.hex)))
    }

    @Test func corruptedLayerIsRefusedAndNothingKept() throws {
        let s = try TempDir()
        defer { s.remove() }
        let store = try ImageStore(root: s.at("store"))
        let good = try Self.appLayer(s, "good")
        try ImageBuilder.dockerSave([.init(tags: ["ok:1"], layers: [good])], to: s.at("ok.tar"), scratch: s)
        try store.load(archive: s.at("ok.tar"))
        let before = try FS.listDirectory(s.at("store/layers/sha256")).sorted()

        // an image whose second layer's bytes differ from what its config promises
        let base = try Self.busyboxLayer(s, compression: .gzip)
        let layer = try Self.appLayer(s, "bad")
        let expected = try ArchiveReader.uncompressedDigest(layer)
        try ImageBuilder.dockerSave([.init(tags: ["bad:1"], layers: [base, layer])], to: s.at("bad.tar"), scratch: s)
        let dir = s.at("unpacked")
        try FS.mkdirAll(dir)
        try ArchiveReader.extract(s.at("bad.tar"), into: dir)
        let name = try Digest.of(file: layer).hex + "/layer.tar"
        try Tar.write(dir + "/" + name, [.file("app/bad", "tampered")], compression: .gzip)
        let got = try ArchiveReader.uncompressedDigest(dir + "/" + name)
        try Tar.pack(dir, into: s.at("bad2.tar"))

        #expect {
            try store.load(archive: s.at("bad2.tar"))
        } throws: { "\($0)" == "digest mismatch for layer \(name): expected \(expected), got \(got)" }
        #expect(try FS.listDirectory(s.at("store/layers/sha256")).sorted() == before)
        #expect(try store.list().map(\.repoTags) == [["ok:1"]])
        #expect(try FS.listDirectory(s.at("store/tmp")).isEmpty)
        #expect(try FS.listDirectory(s.at("store/configs/sha256")).count == 1)

        // an OCI blob that does not match its descriptor
        let oci = s.at("oci")
        try ImageBuilder.ociLayout(.init(tags: ["o:1"], layers: [base]), to: s.at("o.tar"), scratch: s)
        try FS.mkdirAll(oci)
        try ArchiveReader.extract(s.at("o.tar"), into: oci)
        let blob = try Digest.of(file: base)
        var bytes = try FS.readBytes(oci + "/blobs/sha256/" + blob.hex)
        bytes[bytes.count / 2] ^= 0xff
        try FS.atomicWrite(oci + "/blobs/sha256/" + blob.hex, bytes, durable: false)
        try Tar.pack(oci, into: s.at("o2.tar"))
        #expect {
            try store.load(archive: s.at("o2.tar"))
        } throws: { "\($0)".hasPrefix("digest mismatch for layer \(blob): expected \(blob), got sha256:") }
        #expect(try FS.listDirectory(s.at("store/layers/sha256")).sorted() == before)
        #expect(try store.list().count == 1)
    }

    @Test func removeDropsOnlyUnusedLayers() throws {
        let s = try TempDir()
        defer { s.remove() }
        let store = try ImageStore(root: s.at("store"))
        let base = try Self.busyboxLayer(s, compression: .gzip)
        let a = try Self.appLayer(s, "a"), b = try Self.appLayer(s, "b")
        try ImageBuilder.dockerSave([.init(tags: ["a:1", "a:2"], layers: [base, a]),
                                     .init(tags: ["b:1"], layers: [base, b])], to: s.at("ab.tar"), scratch: s)
        let images = try store.load(archive: s.at("ab.tar"))
        #expect(images.count == 2)
        let (imgA, imgB) = (images[0], images[1])

        // untagging one of two tags keeps everything
        let r1 = try store.remove("a:1")
        #expect(r1.untagged == ["a:1"] && r1.deletedImage == nil && r1.deletedLayers.isEmpty)
        #expect(try store.inspect("a:2").id == imgA.id)

        // the last tag deletes the image and its own layer, not the shared base
        let r2 = try store.remove("a:2")
        #expect(r2.deletedImage == imgA.id)
        #expect(r2.deletedLayers == [imgA.layers[1]])
        #expect(!FS.exists(store.layerPath(imgA.layers[1])))
        #expect(FS.isDirectory(store.layerPath(imgA.layers[0])))
        #expect(!FS.exists(store.configPath(imgA.id)))
        #expect(throws: (any Error).self) { try store.inspect("a:2") }

        // removal by id prefix removes the rest
        let r3 = try store.remove(String(imgB.id.hex.prefix(10)))
        #expect(r3.deletedImage == imgB.id)
        #expect(Set(r3.deletedLayers) == Set(imgB.layers))
        #expect(try FS.listDirectory(s.at("store/layers/sha256")).isEmpty)
        #expect(try store.list().isEmpty)
    }

    @Test func ambiguousPrefixAndBadArchives() throws {
        let s = try TempDir()
        defer { s.remove() }
        let store = try ImageStore(root: s.at("store"))
        try Tar.write(s.at("empty.tar"), [.file("hello", "x")])
        #expect { try store.load(archive: s.at("empty.tar")) } throws: { "\($0)".contains("not an image archive") }
        try Tar.write(s.at("bad-digest.tar"), [.file("index.json", """
            {"schemaVersion":2,"manifests":[{"mediaType":"\(MediaType.ociManifest)","digest":"md5:00","size":1}]}
            """)])
        #expect { try store.load(archive: s.at("bad-digest.tar")) } throws: { "\($0)".contains("invalid digest \"md5:00\"") }
        #expect(try FS.listDirectory(s.at("store/tmp")).isEmpty)
    }
}
