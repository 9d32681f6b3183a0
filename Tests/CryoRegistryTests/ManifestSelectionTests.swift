import CryoImages
import CryoRegistry
import Testing

@Suite struct ManifestSelectionTests {
    func entry(_ os: String, _ arch: String, _ variant: String? = nil, type: String = MediaType.ociManifest, n: Int) -> Descriptor {
        Descriptor(mediaType: type, digest: "sha256:" + String(repeating: String(n), count: 64), size: 100,
                   platform: Platform(os: os, architecture: arch, variant: variant))
    }

    @Test func picksThisPlatformFromAnIndex() throws {
        let index = ImageIndex(schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [
            entry("linux", "arm64", "v8", n: 1), entry("linux", "arm", "v7", n: 2),
            entry("unknown", "unknown", n: 3), entry("linux", "amd64", n: 4), entry("linux", "386", n: 5),
        ])
        #expect(try PlatformSpec.host.select(from: index).digest.hasSuffix("4444"))
        #expect(try PlatformSpec.parse("linux/arm64").select(from: index).digest.hasSuffix("1111"))
        #expect(try PlatformSpec.parse("linux/arm").select(from: index).digest.hasSuffix("2222"))
        #expect(try PlatformSpec.parse("linux/aarch64/v8").select(from: index).digest.hasSuffix("1111"))
    }

    @Test func amd64FallsBackTo386Only() throws {
        let index = ImageIndex(schemaVersion: 2, mediaType: nil, manifests: [entry("linux", "arm64", n: 1), entry("linux", "386", n: 5)])
        #expect(try PlatformSpec.host.select(from: index).digest.hasSuffix("5555"))
    }

    @Test func noMatchSaysWhichPlatform() {
        let index = ImageIndex(schemaVersion: 2, mediaType: nil, manifests: [entry("linux", "arm64", n: 1), entry("windows", "amd64", n: 2)])
        #expect {
            try PlatformSpec.host.select(from: index)
        } throws: { "\($0)".contains("no matching manifest for linux/amd64 in the manifest list entries") }
    }

    @Test func entriesOfOtherTypesAreSkipped() throws {
        let index = ImageIndex(schemaVersion: 2, mediaType: nil, manifests: [
            entry("linux", "amd64", type: "application/vnd.in-toto+json", n: 1), entry("linux", "amd64", type: MediaType.dockerManifest, n: 2),
        ])
        #expect(try PlatformSpec.host.select(from: index).digest.hasSuffix("2222"))
    }

    @Test func platformParsing() throws {
        #expect(try PlatformSpec.parse("linux/x86_64") == PlatformSpec.host)
        #expect(try PlatformSpec.parse("linux/amd64/v1") == PlatformSpec.host)
        #expect(try PlatformSpec.parse("linux") == PlatformSpec.host)
        #expect(try PlatformSpec.parse("linux/arm").variant == "v7")
        #expect(throws: (any Error).self) { try PlatformSpec.parse("windows/amd64") }
        #expect(throws: (any Error).self) { try PlatformSpec.parse("linux//") }
    }

    @Test func documentsAreDecodedByContentTypeOrShape() throws {
        let manifest = #"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:aa","size":1},"layers":[]}"#
        guard case .image(let m) = try ManifestDocument.decode(Array(manifest.utf8), contentType: "application/vnd.docker.distribution.manifest.v2+json") else {
            Issue.record("not an image manifest"); return
        }
        #expect(m.config.size == 1)
        let index = #"{"schemaVersion":2,"manifests":[]}"#
        guard case .index = try ManifestDocument.decode(Array(index.utf8), contentType: "application/json") else {
            Issue.record("not an index"); return
        }
        let schema1 = #"{"schemaVersion":1,"name":"x","fsLayers":[]}"#
        #expect(throws: (any Error).self) { try ManifestDocument.decode(Array(schema1.utf8), contentType: MediaType.schema1Signed) }
    }

    @Test func progressLinesAreDockerdsFormat() {
        let l = ProgressLine.bytes("Downloading", id: "2c5bcb760167", current: 128, total: 128)
        #expect(String(decoding: l.encoded(), as: UTF8.self)
            == #"{"status":"Downloading","progressDetail":{"current":128,"total":128},"progress":"[==================================================\u003e]     128B/128B","id":"2c5bcb760167"}"# + "\r\n")
        #expect(String(decoding: ProgressLine.update("Pull complete", id: "x").encoded(), as: UTF8.self)
            == #"{"status":"Pull complete","progressDetail":{},"id":"x"}"# + "\r\n")
        #expect(String(decoding: ProgressLine.message("Pulling from test/hello", id: "latest").encoded(), as: UTF8.self)
            == #"{"status":"Pulling from test/hello","id":"latest"}"# + "\r\n")
        #expect(String(decoding: ProgressLine.failure("boom").encoded(), as: UTF8.self)
            == #"{"errorDetail":{"message":"boom"},"error":"boom"}"# + "\r\n")
        #expect(String(decoding: ProgressLine.bytes("Downloading", id: "i", current: 1_200_000, total: 2_810_000).encoded(), as: UTF8.self)
            .contains(#""progress":"[=====================\u003e                             ]    1.2MB/2.81MB""#))
    }
}
