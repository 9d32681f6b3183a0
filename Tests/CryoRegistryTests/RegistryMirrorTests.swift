@testable import CryoRegistry
import Testing

/// `--registry-mirror`: dockerd's URL rules, and which hosts a pull tries in which order.
@Suite struct RegistryMirrorTests {
    @Test func mirrorsAreURLsWithAScheme() throws {
        #expect(try RegistrySettings.validateMirror("https://mirror.example:5000/") == ("mirror.example:5000", false))
        #expect(try RegistrySettings.validateMirror("http://127.0.0.1:5000") == ("127.0.0.1:5000", true))
        for bad in ["mirror.example", "ftp://m", "https://", "https://m/x", "https://m?q", "https://u@m"] {
            #expect(throws: (any Error).self) { try RegistrySettings.validateMirror(bad) }
        }
    }

    @Test func onlyDockerHubImagesGoThroughMirrors() throws {
        let s = RegistrySettings(mirrors: ["m1:5000", "m2"])
        #expect(s.pullHosts(for: try RegistryReference.parse("busybox")) == ["m1:5000", "m2", "registry-1.docker.io"])
        #expect(s.pullHosts(for: try RegistryReference.parse("docker.io/library/alpine:3")) == ["m1:5000", "m2", "registry-1.docker.io"])
        #expect(s.pullHosts(for: try RegistryReference.parse("reg.example:443/team/app")) == ["reg.example:443"])
        #expect(RegistrySettings().pullHosts(for: try RegistryReference.parse("busybox")) == ["registry-1.docker.io"])
    }
}
