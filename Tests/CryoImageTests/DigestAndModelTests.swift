import CryoLinux
import Foundation
import CryoTestSupport
import Testing
@testable import CryoImages

@Suite struct DigestTests {
    let good = "sha256:" + String(repeating: "ab", count: 32)

    @Test func parsesSHA256() throws {
        let d = try Digest(good)
        #expect(d.hex == String(repeating: "ab", count: 32))
        #expect(d.description == good)
    }

    @Test(arguments: [
        ("md5:abc", "not supported"),
        ("sha256:abc", "64 hex digits"),
        ("sha256:" + String(repeating: "AB", count: 32), "lowercase hex"),
        ("sha256:" + String(repeating: "zz", count: 32), "lowercase hex"),
        ("abcdef", "expected \"sha256:<64 hex digits>\""),
    ])
    func refusesOthers(input: String, message: String) {
        #expect {
            _ = try Digest(input)
        } throws: { error in
            "\(error)".contains(message) && "\(error)".contains(input)
        }
    }

    @Test func digestsBytesAndFilesAlike() throws {
        let s = try TempDir()
        defer { s.remove() }
        #expect(Digest.of(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        var big = [UInt8](repeating: 7, count: 3 << 20)
        big[12345] = 1
        try FS.atomicWrite(s.at("f"), big, durable: false)
        #expect(try Digest.of(file: s.at("f")) == Digest.of(big))
    }

    @Test func mismatchMessage() throws {
        let a = Digest.of([1]), b = Digest.of([2])
        #expect(throws: Never.self) { try a.verify(a, what: "layer x") }
        #expect {
            try a.verify(b, what: "layer x")
        } throws: { "\($0)" == "digest mismatch for layer x: expected \(a), got \(b)" }
    }

    @Test func codableAsString() throws {
        let d = try Digest(good)
        let data = try JSONEncoder().encode([d])
        #expect(String(decoding: data, as: UTF8.self) == "[\"\(good)\"]")
        #expect(try JSONDecoder().decode([Digest].self, from: data) == [d])
        #expect(throws: (any Error).self) { try JSONDecoder().decode([Digest].self, from: Data("[\"sha512:00\"]".utf8)) }
    }
}

@Suite struct ModelTests {
    @Test func decodesDockerManifestAndConfig() throws {
        let manifest = """
        [{"Config":"abc.json","RepoTags":["busybox:latest"],"Layers":["1/layer.tar","2/layer.tar"],"LayerSources":{}}]
        """
        let m = try JSONDecoder().decode([DockerArchiveManifestEntry].self, from: Data(manifest.utf8))
        #expect(m == [DockerArchiveManifestEntry(Config: "abc.json", RepoTags: ["busybox:latest"], Layers: ["1/layer.tar", "2/layer.tar"])])

        let config = """
        {"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",
         "config":{"Env":["PATH=/bin"],"Cmd":["sh"],"Entrypoint":["/init"],"WorkingDir":"/srv","User":"1000:1000",
                   "ExposedPorts":{"80/tcp":{}},"Labels":{"a":"b"},"Hostname":"ignored"},
         "rootfs":{"type":"layers","diff_ids":["sha256:\(String(repeating: "0", count: 64))"]},
         "history":[{"created_by":"x"}]}
        """
        let c = try JSONDecoder().decode(ImageConfiguration.self, from: Data(config.utf8))
        #expect(c.config?.Env == ["PATH=/bin"])
        #expect(c.config?.Cmd == ["sh"])
        #expect(c.config?.Entrypoint == ["/init"])
        #expect(c.config?.WorkingDir == "/srv")
        #expect(c.config?.User == "1000:1000")
        #expect(c.config?.ExposedPorts?.keys.sorted() == ["80/tcp"])
        #expect(c.config?.Labels == ["a": "b"])
        #expect(c.rootfs.diff_ids.count == 1)
    }

    @Test func ociIndexAndManifestRoundTrip() throws {
        let d = Descriptor(mediaType: MediaType.ociLayerGzip, digest: Digest.of([1]).description, size: 1)
        let m = ImageManifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: Digest.of([2]).description, size: 2), layers: [d])
        let back = try JSONDecoder().decode(ImageManifest.self, from: JSONEncoder().encode(m))
        #expect(back == m)
        let index = """
        {"schemaVersion":2,"manifests":[{"mediaType":"\(MediaType.ociManifest)","digest":"\(d.digest)","size":9,
          "platform":{"architecture":"amd64","os":"linux"},"annotations":{"org.opencontainers.image.ref.name":"1.0"}}]}
        """
        let i = try JSONDecoder().decode(ImageIndex.self, from: Data(index.utf8))
        #expect(i.manifests[0].platform?.os == "linux")
        #expect(i.manifests[0].annotations?["org.opencontainers.image.ref.name"] == "1.0")
    }

    @Test func referenceNormalization() {
        #expect(ImageReference.normalize("busybox") == "busybox:latest")
        #expect(ImageReference.normalize("busybox:1.36") == "busybox:1.36")
        #expect(ImageReference.normalize("localhost:5000/app") == "localhost:5000/app:latest")
        #expect(ImageReference.normalize("localhost:5000/app:v1") == "localhost:5000/app:v1")
    }
}
