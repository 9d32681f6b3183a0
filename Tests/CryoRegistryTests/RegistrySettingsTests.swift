import CryoRegistry
import Testing

@Suite struct RegistrySettingsTests {
    @Test func loopbackIsInsecureAsInDockerd() {
        let s = RegistrySettings()
        #expect(s.isInsecure("127.0.0.1:5000"))
        #expect(s.isInsecure("127.9.8.7:443"))
        #expect(s.isInsecure("localhost:5000"))
        #expect(s.isInsecure("localhost"))
        #expect(s.isInsecure("[::1]:5000"))
        #expect(!s.isInsecure("128.0.0.1:5000"))
        #expect(!s.isInsecure("registry-1.docker.io"))
        #expect(!s.isInsecure("reg.example:5000"))
    }

    @Test func insecureRegistryEntries() throws {
        let s = RegistrySettings(insecureRegistries: ["reg.example:5000", "10.1.0.0/16", "plain.example"])
        #expect(s.isInsecure("reg.example:5000"))
        #expect(!s.isInsecure("reg.example:5001"))
        #expect(s.isInsecure("plain.example:8443"))
        #expect(s.isInsecure("10.1.200.3:5000"))
        #expect(!s.isInsecure("10.2.0.1:5000"))
        #expect(try RegistrySettings.validateInsecureEntry("http://reg.example:5000/") == "reg.example:5000")
        #expect(throws: (any Error).self) { try RegistrySettings.validateInsecureEntry("10.0.0.0/99") }
        #expect(throws: (any Error).self) { try RegistrySettings.validateInsecureEntry("bad host") }
        #expect(throws: (any Error).self) { try RegistrySettings.validateInsecureEntry("") }
    }

    @Test func plainHTTPOnlyForInsecureHostsWithoutACA() {
        let s = RegistrySettings(certsDir: "/nonexistent-cryo-certs")
        #expect(s.allowsPlainHTTP("127.0.0.1:5000"))
        #expect(!s.allowsPlainHTTP("reg.example:5000"))
    }
}
