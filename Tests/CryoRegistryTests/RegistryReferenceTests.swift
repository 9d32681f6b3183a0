import CryoImages
import CryoRegistry
import Testing

@Suite struct RegistryReferenceTests {
    @Test func dockerHubNamesGetLibraryAndLatest() throws {
        let r = try RegistryReference.pullQuery(image: "busybox", tag: "latest")
        #expect(r.domain == "docker.io")
        #expect(r.path == "library/busybox")
        #expect(r.tag == "latest")
        #expect(r.familiarName == "busybox")
        #expect(r.familiarTagged == "busybox:latest")
        #expect(r.endpointHost == "registry-1.docker.io")
        #expect(r.description == "docker.io/library/busybox:latest")
    }

    @Test func userRepositoryOnHub() throws {
        let r = try RegistryReference.parse("me/app:1.0")
        #expect(r.domain == "docker.io")
        #expect(r.path == "me/app")
        #expect(r.familiarName == "me/app")
    }

    @Test func firstComponentIsAHostWhenItLooksLikeOne() throws {
        let a = try RegistryReference.parse("127.0.0.1:5000/test/hello")
        #expect(a.domain == "127.0.0.1:5000")
        #expect(a.path == "test/hello")
        #expect(a.tag == nil)
        #expect(a.familiarName == "127.0.0.1:5000/test/hello")
        #expect(try RegistryReference.parse("localhost/x").domain == "localhost")
        #expect(try RegistryReference.parse("reg.example.com/x/y").domain == "reg.example.com")
        #expect(try RegistryReference.parse("index.docker.io/library/redis").domain == "docker.io")
        #expect(try RegistryReference.parse("index.docker.io/redis").path == "library/redis")
        // A plain first component is a Hub namespace, not a host.
        #expect(try RegistryReference.parse("team/app").domain == "docker.io")
    }

    @Test func theCLIsNormalizedFormRoundTrips() throws {
        let r = try RegistryReference.pullQuery(image: "docker.io/library/redis", tag: "latest")
        #expect(r.familiarTagged == "redis:latest")
    }

    @Test func digestInTagMeansPullByDigest() throws {
        let hex = String(repeating: "ab", count: 32)
        let r = try RegistryReference.pullQuery(image: "127.0.0.1:5000/test/hello", tag: "sha256:" + hex)
        #expect(r.tag == nil)
        #expect(r.digest?.hex == hex)
        #expect(r.manifestReference == "sha256:" + hex)
        #expect(r.familiarDigested == "127.0.0.1:5000/test/hello@sha256:" + hex)
        let inline = try RegistryReference.parse("busybox@sha256:" + hex)
        #expect(inline.digest?.hex == hex)
        #expect(inline.path == "library/busybox")
    }

    @Test func trailingColonAndTagInName() throws {
        #expect(try RegistryReference.pullQuery(image: "busybox:", tag: "latest").tag == "latest")
        #expect(try RegistryReference.pullQuery(image: "busybox:1.36", tag: "").tag == "1.36")
        #expect(try RegistryReference.pullQuery(image: "busybox", tag: "1.37").tag == "1.37")
        #expect(try RegistryReference.parse("localhost:5000/a:v2").tag == "v2")
    }

    @Test func noTagMeansAllTagsAndIsRefused() {
        // dockerd pulls every tag for a bare name with no tag: cryo refuses instead of pulling latest.
        #expect { try RegistryReference.pullQuery(image: "busybox", tag: nil) } throws: { "\($0)".contains("--all-tags") }
        #expect { try RegistryReference.pullQuery(image: "busybox:", tag: "") } throws: { "\($0)".contains("--all-tags") }
    }

    @Test func invalidReferencesAreRefused() {
        #expect(throws: (any Error).self) { try RegistryReference.parse("Busybox") }
        #expect(throws: (any Error).self) { try RegistryReference.parse("") }
        #expect(throws: (any Error).self) { try RegistryReference.parse("a//b") }
        #expect(throws: (any Error).self) { try RegistryReference.parse("busybox:-bad") }
        #expect(throws: (any Error).self) { try RegistryReference.parse("busybox@sha256:short") }
        #expect(throws: (any Error).self) { try RegistryReference.parse("a_-b") }
    }
}

@Suite struct AuthChallengeTests {
    @Test func basic() {
        let c = AuthChallenge.parse(["Basic realm=\"test-registry\""])
        #expect(c == [AuthChallenge(scheme: "basic", parameters: ["realm": "test-registry"])])
    }

    @Test func bearerWithCommasInsideQuotes() {
        let c = AuthChallenge.parse([#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#])
        #expect(c.count == 1)
        #expect(c[0].scheme == "bearer")
        #expect(c[0].parameters["realm"] == "https://auth.docker.io/token")
        #expect(c[0].parameters["service"] == "registry.docker.io")
        #expect(c[0].parameters["scope"] == "repository:samalba/my-app:pull,push")
    }

    @Test func severalChallengesInOneHeaderAndEscapes() {
        let c = AuthChallenge.parse([#"Basic realm="a \"b\"", Bearer realm="https://t/x", service=reg"#])
        #expect(c.count == 2)
        #expect(c[0].parameters["realm"] == "a \"b\"")
        #expect(c[1].scheme == "bearer")
        #expect(c[1].parameters["service"] == "reg")
    }

    @Test func credentialsFromTheHeader() {
        // {"username":"u","password":"p","email":null,"serveraddress":"127.0.0.1:5000"}, base64url without padding
        let json = #"{"username":"u","password":"p?>","email":null,"serveraddress":"127.0.0.1:5000"}"#
        let b64 = Array(json.utf8).base64URL()
        let c = RegistryCredentials.fromHeader(b64)
        #expect(c.basic?.user == "u")
        #expect(c.basic?.password == "p?>")
        #expect(RegistryCredentials.fromHeader("e30=").isAnonymous)
        #expect(RegistryCredentials.fromHeader("not base64 !!").isAnonymous)
        #expect(RegistryCredentials.fromHeader(nil).isAnonymous)
        let auth = RegistryCredentials.fromHeader(Array(#"{"auth":"dTpw"}"#.utf8).base64URL())
        #expect(auth.basic?.user == "u")
        #expect(auth.basic?.password == "p")
    }
}

extension Array where Element == UInt8 {
    /// base64url without padding (the test's own encoder).
    func base64URL() -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < count {
            let b0 = Int(self[i]), b1 = i + 1 < count ? Int(self[i + 1]) : 0, b2 = i + 2 < count ? Int(self[i + 2]) : 0
            out.append(table[b0 >> 2])
            out.append(table[((b0 & 3) << 4) | (b1 >> 4)])
            if i + 1 < count { out.append(table[((b1 & 15) << 2) | (b2 >> 6)]) }
            if i + 2 < count { out.append(table[b2 & 63]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
