import FoundationEssentials
import Glibc
import CryoTestSupport
import Testing
@testable import CryoLinux
@testable import CryoOCI
@testable import CryoRuntime

@Suite struct ContainerIDTests {
    @Test(arguments: ["abc", "a", "0", "web-1", "my_container.v2+build", "A1b2C3", "...", "x.",
                      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                      String(repeating: "a", count: 1024)])
    func valid(_ id: String) throws {
        try ContainerStore.validate(id: id)
    }

    @Test(arguments: ["", ".", "..", "a/b", "/abs", "../x", "a b", " ", "a\tb", "a\nb", "é", "container-é",
                      "容器", "ab\u{0}c", "a:b", "a*b", "a\\b", "e\u{301}", "Ⅻ", "١٢٣",
                      String(repeating: "a", count: 1025)])
    func invalid(_ id: String) {
        let e = #expect(throws: CryoFailure.self) { try ContainerStore.validate(id: id) }
        #expect(e?.code == .invalidArgument)
        #expect(e?.description == RuntimeError.invalidID(id).description)
    }

    @Test func invalidIDMessage() {
        #expect(RuntimeError.invalidID("a/b").description == "invalid container id \"a/b\": use letters, digits, '_', '-', '.' and '+'")
    }

    @Test func storePaths() {
        let s = ContainerStore(root: "/run/cryo-runtime")
        #expect(s.dir("web") == "/run/cryo-runtime/web")
        #expect(s.statePath("web") == "/run/cryo-runtime/web/state.json")
        #expect(s.fifoPath("web") == "/run/cryo-runtime/web/exec.fifo")
    }
}

@Suite struct TimestampTests {
    private func digits(_ s: Substring) -> Int? { s.allSatisfy(\.isASCII) ? Int(s) : nil }

    @Test func rfc3339NowFormat() throws {
        let before = time(nil)
        let s = rfc3339Now()
        let after = time(nil)
        // YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ
        let regex = try Regex(#"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z$"#)
        #expect(s.wholeMatch(of: regex) != nil, "\(s)")
        #expect(s.utf8.count == 30)

        let c = Array(s)
        let year = try #require(Int(String(c[0..<4]))), month = try #require(Int(String(c[5..<7])))
        let day = try #require(Int(String(c[8..<10]))), hour = try #require(Int(String(c[11..<13])))
        let minute = try #require(Int(String(c[14..<16]))), second = try #require(Int(String(c[17..<19])))
        #expect((1...12).contains(month) && (1...31).contains(day))
        #expect((0...23).contains(hour) && (0...59).contains(minute) && (0...60).contains(second))

        // It is UTC and it is now.
        var tmv = tm()
        tmv.tm_year = Int32(year - 1900); tmv.tm_mon = Int32(month - 1); tmv.tm_mday = Int32(day)
        tmv.tm_hour = Int32(hour); tmv.tm_min = Int32(minute); tmv.tm_sec = Int32(second)
        let t = timegm(&tmv)
        #expect(t >= before && t <= after, "\(s) is not between \(before) and \(after)")
    }

    @Test func fractionIsZeroPadded() {
        // Sample for more than a second, so some samples land in the first
        // 100 ms of a second (tv_nsec < 10^8) and need leading zeros.
        var sawLeadingZero = false
        var first: timespec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &first)
        while true {
            let s = rfc3339Now()
            #expect(s.utf8.count == 30, "\(s)")
            if s.utf8.count == 30, Array(s)[20] == "0" { sawLeadingZero = true; break }
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            if now.tv_sec - first.tv_sec > 3 { break }
            usleep(5000)
        }
        #expect(sawLeadingZero)
    }
}

@Suite struct JSONQuoteTests {
    @Test func escapes() {
        #expect(jsonQuote("plain") == "\"plain\"")
        #expect(jsonQuote("") == "\"\"")
        #expect(jsonQuote("say \"hi\"") == #""say \"hi\"""#)
        #expect(jsonQuote(#"C:\dir"#) == #""C:\\dir""#)
        #expect(jsonQuote("a\nb\rc\td") == #""a\nb\rc\td""#)
        #expect(jsonQuote("\u{0}\u{1}\u{8}\u{c}\u{1b}\u{1f}") == #""\u0000\u0001\u0008\u000c\u001b\u001f""#)
        #expect(jsonQuote(" ~\u{7f}") == "\" ~\u{7f}\"")     // printable and DEL pass through
        #expect(jsonQuote("héllo ✓ 😀") == "\"héllo ✓ 😀\"")   // non-ASCII stays UTF-8
        #expect(jsonQuote("</script>") == "\"</script>\"")
    }

    @Test func outputIsValidJSONThatDecodesBack() throws {
        let samples = ["container \"web\" failed:\n\tcause: C:\\x", "\u{0}\u{1}\u{2}\u{1f} end", "é😀\r\n", "\\\"\\"]
        for s in samples {
            let doc = "{\"msg\":\(jsonQuote(s))}"
            let decoded = try JSONDecoder().decode([String: String].self, from: Data(doc.utf8))
            #expect(decoded["msg"] == s)
        }
    }

    @Test func format4() {
        #expect(String(format4: 0) == "\\u0000")
        #expect(String(format4: 0x1f) == "\\u001f")
        #expect(String(format4: 0xabc) == "\\u0abc")
    }
}

@Suite struct InitProtocolTests {
    @Test func initConfigRoundTrip() throws {
        var c = InitConfig(mode: .create, id: "web", bundle: "/b", rootfs: "/b/rootfs", spec: Spec.defaultSpec(terminal: false))
        c.joinNamespaces = [Spec.Namespace(type: "network", path: "/run/netns/x")]
        c.newCgroupNamespace = true
        c.cgroupPath = "/cryo/web"
        c.fifoFD = 4
        c.consoleFD = 5
        c.pidFD = 7
        c.noPivot = true
        c.preserveFDs = 2
        let back = try JSONDecoder().decode(InitConfig.self, from: JSONEncoder().encode(c))
        #expect(back.mode == .create)
        #expect(back.id == "web")
        #expect(back.bundle == "/b")
        #expect(back.rootfs == "/b/rootfs")
        #expect(back.spec == c.spec)
        #expect(back.joinNamespaces == c.joinNamespaces)
        #expect(back.newCgroupNamespace)
        #expect(back.cgroupPath == "/cryo/web")
        #expect(back.fifoFD == 4 && back.consoleFD == 5 && back.pidFD == 7)
        #expect(back.noPivot)
        #expect(back.preserveFDs == 2)
    }

    @Test func initConfigDefaultsAndExecMode() throws {
        let c = InitConfig(mode: .exec, id: "x", bundle: "", rootfs: "", spec: Spec(process: Spec.Process(args: ["ls"])))
        #expect(c.fifoFD == -1 && c.consoleFD == -1 && c.pidFD == -1 && c.preserveFDs == 0)
        let json = String(decoding: try JSONEncoder().encode(c), as: UTF8.self)
        #expect(json.contains(#""mode":"exec""#))
        let back = try JSONDecoder().decode(InitConfig.self, from: Data(json.utf8))
        #expect(back.mode == .exec)
        #expect(back.spec.process?.args == ["ls"])
        #expect(back.joinNamespaces.isEmpty && !back.noPivot && back.cgroupPath.isEmpty)
    }

    @Test func initMessageRoundTrip() throws {
        let msgs = [InitMessage(.hooks), InitMessage(.go), InitMessage(.ready),
                    InitMessage(.error, error: "mount /proc: \"denied\"\n")]
        for m in msgs {
            let back = try JSONDecoder().decode(InitMessage.self, from: JSONEncoder().encode(m))
            #expect(back == m)
        }
        let wire = String(decoding: try JSONEncoder().encode(InitMessage(.ready)), as: UTF8.self)
        #expect(wire == #"{"kind":"ready"}"#)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(InitMessage.self, from: Data(#"{"kind":"bogus"}"#.utf8))
        }
    }
}

@Suite struct LookPathTests {
    @Test func findsExecutablesOnly() throws {
        let t = try TempDir("cryo-lookpath")
        defer { t.remove() }
        let first = try t.mkdir("first"), second = try t.mkdir("second")
        try t.file("first/data", "not a program", mode: 0o644)
        try t.file("second/data", "#!/bin/sh\n", mode: 0o755)       // the executable one is later in PATH
        try t.file("second/tool", "#!/bin/sh\n", mode: 0o755)
        try t.file("first/both", "#!/bin/sh\n", mode: 0o755)
        try t.file("second/both", "#!/bin/sh\n", mode: 0o755)
        try t.file("first/only-data", "x", mode: 0o644)
        try t.mkdir("first/adir")
        try sys(chmod(t.at("first/adir"), 0o755), "chmod")

        let env = ["HOME=/root", "PATH=/nonexistent-cryo-unit:\(first):\(second)"]
        #expect(try ProcessSetup.lookPath("tool", env: env) == second + "/tool")
        #expect(try ProcessSetup.lookPath("data", env: env) == second + "/data")
        #expect(try ProcessSetup.lookPath("both", env: env) == first + "/both")
        let e = #expect(throws: CryoFailure.self) { try ProcessSetup.lookPath("only-data", env: env) }
        #expect(e?.description == "exec: \"only-data\": executable file not found in $PATH")
        #expect(e?.code == .commandNotRunnable && e?.rootErrno == ENOENT)
        #expect(throws: CryoFailure.self) { try ProcessSetup.lookPath("adir", env: env) }
        #expect(throws: CryoFailure.self) { try ProcessSetup.lookPath("missing", env: env) }
        #expect(throws: CryoFailure.self) { try ProcessSetup.lookPath("tool", env: ["PATH=\(first)"]) }
    }

    @Test func namesWithASlashAreNotSearched() throws {
        #expect(try ProcessSetup.lookPath("/bin/anything", env: []) == "/bin/anything")
        #expect(try ProcessSetup.lookPath("./run.sh", env: ["PATH=/nowhere"]) == "./run.sh")
    }

    @Test func defaultPathWhenTheEnvironmentHasNone() throws {
        let sh = try ProcessSetup.lookPath("sh", env: ["TERM=xterm"])
        #expect(sh.hasSuffix("/sh"))
        #expect(["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"].contains(FS.parent(sh)))
        #expect(throws: CryoFailure.self) { try ProcessSetup.lookPath("sh", env: ["PATH="]) }
    }
}

/// Which way a restore goes: images with a network namespace (runc's, older cryod's) get it
/// as an external one; images dumped from inside the namespace get a CRIU started inside.
@Suite struct RestoreNetworkModeTests {
    @Test func imagesWithANetnsImageHoldANetworkNamespace() throws {
        let t = try TempDir()
        defer { t.remove() }
        try t.file("inventory.img")
        try t.file("pstree.img")
        #expect(!Runtime.imagesHoldNetworkNamespace(t.path))
        try t.file("netns-11.img")
        #expect(Runtime.imagesHoldNetworkNamespace(t.path))
        #expect(!Runtime.imagesHoldNetworkNamespace(t.at("missing")))
    }

    @Test func networkNamespacePathOnlyForAPathJoinedNamespace() throws {
        func spec(_ ns: [[String: String]]) throws -> Spec {
            let list = ns.map { "{" + $0.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ",") + "}" }
            let json = #"{"ociVersion":"1.0.2","linux":{"namespaces":["# + list.joined(separator: ",") + "]}}"
            return try JSONDecoder().decode(Spec.self, from: Data(json.utf8))
        }
        #expect(Runtime.networkNamespacePath(try spec([["type": "network", "path": "/run/netns/x"]])) == "/run/netns/x")
        #expect(Runtime.networkNamespacePath(try spec([["type": "network"]])) == nil)
        #expect(Runtime.networkNamespacePath(try spec([["type": "network", "path": ""]])) == nil)
        #expect(Runtime.networkNamespacePath(try spec([["type": "pid", "path": "/proc/1/ns/pid"]])) == nil)
    }
}
