@testable import CryoAPI
@testable import CryoEngine
import CryoImages
import CryoMonitor
import CryoNetwork
import CryoOCI
import CryoRuntime
import FoundationEssentials
import XCTest

final class StateMachineTests: XCTestCase {
    func testAllowedAndRefused() {
        XCTAssertNil(StateMachine.check(.start, status: .created, id: "c"))
        XCTAssertNil(StateMachine.check(.start, status: .exited, id: "c"))
        XCTAssertEqual(StateMachine.check(.start, status: .running, id: "c")?.code, .notModified)
        XCTAssertEqual(StateMachine.check(.stop, status: .exited, id: "c")?.code, .notModified)
        XCTAssertEqual(StateMachine.check(.kill, status: .exited, id: "c")?.code, .conflict)
        XCTAssertEqual(StateMachine.check(.remove, status: .running, id: "c")?.code, .conflict)
        XCTAssertNil(StateMachine.check(.forceRemove, status: .running, id: "c"))
        XCTAssertEqual(StateMachine.check(.pause, status: .paused, id: "c")?.code, .conflict)
        XCTAssertNil(StateMachine.check(.unpause, status: .paused, id: "c"))
        XCTAssertEqual(StateMachine.check(.checkpoint, status: .paused, id: "c")?.code, .conflict)
        XCTAssertNil(StateMachine.check(.checkpoint, status: .running, id: "c"))
        XCTAssertEqual(StateMachine.check(.restore, status: .running, id: "c")?.code, .conflict)
        XCTAssertEqual(StateMachine.check(.exec, status: .exited, id: "c")?.code, .conflict)
    }
}

final class SpecBuilderTests: XCTestCase {
    func image(entrypoint: [String]? = nil, cmd: [String]? = nil, env: [String]? = nil) -> ImageConfiguration.Config {
        var c = ImageConfiguration.Config()
        c.Entrypoint = entrypoint
        c.Cmd = cmd
        c.Env = env
        return c
    }

    func testCommandRules() throws {
        var req = ContainerConfig()
        XCTAssertEqual(try SpecBuilder.command(request: req, image: image(cmd: ["sh"])), ["sh"])
        req.Cmd = ["echo", "hi"]
        XCTAssertEqual(try SpecBuilder.command(request: req, image: image(entrypoint: ["/init"], cmd: ["sh"])), ["/init", "echo", "hi"])
        req.Cmd = nil
        req.Entrypoint = ["top"]
        XCTAssertEqual(try SpecBuilder.command(request: req, image: image(entrypoint: ["/init"], cmd: ["sh"])), ["top"], "--entrypoint drops the image's Cmd")
        req.Entrypoint = [""]
        XCTAssertThrowsError(try SpecBuilder.command(request: req, image: image(entrypoint: ["/init"]))) { e in
            XCTAssertEqual((e as? EngineError)?.code, .invalidArgument)
        }
    }

    func testEnvironmentOverrides() {
        let env = SpecBuilder.environment(request: ["A=2", "C=3"], image: ["A=1", "PATH=/bin"], hostname: "h", tty: true)
        XCTAssertEqual(env, ["PATH=/bin", "HOSTNAME=h", "TERM=xterm", "A=2", "C=3"])
    }

    func testBindMounts() throws {
        let m = try SpecBuilder.bindMount("/src:/dst:ro")
        XCTAssertEqual(m.source, "/src")
        XCTAssertEqual(m.destination, "/dst")
        XCTAssertEqual(m.options, ["rbind", "ro", "rprivate"])
        XCTAssertThrowsError(try SpecBuilder.bindMount("vol:/dst"))
        XCTAssertThrowsError(try SpecBuilder.bindMount("/src:dst"))
        XCTAssertThrowsError(try SpecBuilder.bindMount("/src:/dst:bogus"))
    }

    func testUsers() throws {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\nweb:x:33:33::/:/bin/sh\n"
        let group = "root:x:0:\nwww:x:33:\nextra:x:50:web\n"
        XCTAssertEqual(try SpecBuilder.user("web", passwd: passwd, group: group), Spec.User(uid: 33, gid: 33, additionalGids: [50]))
        XCTAssertEqual(try SpecBuilder.user("1000:2000", passwd: passwd, group: group).gid, 2000)
        XCTAssertEqual(try SpecBuilder.user("nobody:www", passwd: passwd, group: group), Spec.User(uid: 65534, gid: 33))
        XCTAssertThrowsError(try SpecBuilder.user("ghost", passwd: passwd, group: group))
    }

    func testResourcesAndNamespaces() throws {
        var req = ContainerConfig()
        req.Cmd = ["sh"]
        var host = HostConfig()
        host.Memory = 64 << 20
        host.NanoCpus = 1_500_000_000
        host.PidsLimit = 20
        var input = SpecBuilder.Input(id: String(repeating: "a", count: 64), config: req, hostConfig: host, image: nil)
        input.networkNamespacePath = "/run/cryo/netns/x"
        let spec = try SpecBuilder.build(input)
        XCTAssertEqual(spec.linux?.resources?.memory?.limit, 64 << 20)
        XCTAssertEqual(spec.linux?.resources?.cpu?.quota, 150_000)
        XCTAssertEqual(spec.linux?.resources?.cpu?.period, 100_000)
        XCTAssertEqual(spec.linux?.resources?.pids?.limit, 20)
        XCTAssertEqual(spec.hostname, "aaaaaaaaaaaa")
        XCTAssertEqual(spec.root?.readonly, false)
        XCTAssertEqual(spec.linux?.namespaces?.first { $0.type == "network" }?.path, "/run/cryo/netns/x")
        host.NetworkMode = "host"
        let hostSpec = try SpecBuilder.build(SpecBuilder.Input(id: "b", config: req, hostConfig: host, image: nil))
        XCTAssertNil(hostSpec.linux?.namespaces?.first { $0.type == "network" })
        host.Memory = 1024
        XCTAssertThrowsError(try SpecBuilder.build(SpecBuilder.Input(id: "b", config: req, hostConfig: host, image: nil)))
    }
}

final class APIModelTests: XCTestCase {
    func testDockerPyLeanCreateBody() throws {
        let body = #"{"Tty": false, "OpenStdin": false, "StdinOnce": false, "AttachStdin": false, "AttachStdout": false, "AttachStderr": false, "Cmd": ["echo", "hi"], "Image": "busybox", "NetworkDisabled": false, "HostConfig": {"NetworkMode": "default"}}"#
        let r = try JSONDecoder().decode(CreateContainerRequest.self, from: Data(body.utf8))
        XCTAssertEqual(r.config.Cmd, ["echo", "hi"])
        XCTAssertEqual(r.config.Image, "busybox")
        XCTAssertEqual(r.hostConfig.NetworkMode, "default")
    }

    func testCLIBodyWithNullsAndUnknownKeys() throws {
        let body = #"{"Hostname":"","Env":null,"Cmd":["sh"],"Image":"busybox","Volumes":{},"Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"AutoRemove":true,"LogConfig":{"Type":"","Config":{}},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"ConsoleSize":[40,100],"Memory":0,"NanoCpus":0,"MemorySwappiness":-1,"CapAdd":null},"NetworkingConfig":{"EndpointsConfig":{"default":{}}}}"#
        let r = try JSONDecoder().decode(CreateContainerRequest.self, from: Data(body.utf8))
        XCTAssertEqual(r.hostConfig.AutoRemove, true)
        XCTAssertEqual(r.hostConfig.ConsoleSize, [40, 100])
        XCTAssertNil(r.config.Env)
    }

    func testDecodingErrorNamesTheField() {
        let body = #"{"Image":"busybox","HostConfig":{"Memory":"lots"}}"#
        do {
            _ = try JSONDecoder().decode(CreateContainerRequest.self, from: Data(body.utf8))
            XCTFail("decoded a string memory")
        } catch let e as DecodingError {
            XCTAssertTrue(describe(e).contains("HostConfig.Memory"), describe(e))
        } catch { XCTFail("\(error)") }
    }

    func testVersionPrefixAndFlags() {
        XCTAssertEqual(APIServer.stripVersion("/v1.50/containers/json").0, "/containers/json")
        XCTAssertEqual(APIServer.stripVersion("/v1.50/containers/json").1, "1.50")
        XCTAssertEqual(APIServer.stripVersion("/_ping").0, "/_ping")
        XCTAssertEqual(APIServer.stripVersion("/version").1, nil)
        XCTAssertLessThan(APIServer.compare("1.12", "1.24"), 0)
        XCTAssertEqual(APIServer.compare("1.50", "1.50"), 0)
        XCTAssertTrue(flag(["force": "True"], "force"))
        XCTAssertFalse(flag(["force": "False"], "force"))
        XCTAssertFalse(flag(["v": "0"], "v"))
        XCTAssertFalse(flag(["v": "none"], "v"))
        XCTAssertTrue(flag(["all": "1"], "all"))
    }

    func testNames() throws {
        XCTAssertEqual(try Names.validate("/web-1"), "web-1")
        XCTAssertThrowsError(try Names.validate("-bad"))
        XCTAssertThrowsError(try Names.validate("a/b"))
        XCTAssertThrowsError(try Names.validate(String(repeating: "a", count: 254)), "fails at start on the network otherwise")
        XCTAssertNoThrow(try Names.validate(String(repeating: "a", count: 253)))
        XCTAssertThrowsError(try Names.validateCheckpoint(".."))
        XCTAssertThrowsError(try Names.validateCheckpoint("a/b"))
        XCTAssertNoThrow(try Names.validateCheckpoint("cp1.v2"))
        XCTAssertEqual(Names.randomID().count, 64)
    }
}

final class LogAndStreamTests: XCTestCase {
    func testJSONLogLineRoundTrip() {
        let line = JSONLogLine(log: "a \"q\" \\ tab\t\u{1}\n", stream: "stderr", time: "2026-11-29T17:00:00.000000001Z")
        let bytes = line.encoded()
        XCTAssertEqual(bytes.last, 0x0a)
        XCTAssertEqual(JSONLogLine.decode(bytes.dropLast()), line)
    }

    func testLineSplitter() {
        var s = LineSplitter()
        XCTAssertEqual(s.feed(Array("ab\ncd".utf8)), [Array("ab\n".utf8)])
        XCTAssertEqual(s.feed(Array("e\n".utf8)), [Array("cde\n".utf8)])
        XCTAssertEqual(s.feed(Array("tail".utf8)), [])
        XCTAssertEqual(s.flush(), Array("tail".utf8))
        XCTAssertEqual(s.feed([UInt8](repeating: 0x41, count: LineSplitter.maxPartial + 1)).count, 1)
    }

    func testFrames() {
        let f = StreamFrame.encode(.stderr, Array("err".utf8))
        XCTAssertEqual(f, [2, 0, 0, 0, 0, 0, 0, 3, 0x65, 0x72, 0x72])
        var d = StreamFrame.Decoder()
        d.feed(Array(f.prefix(5)))
        XCTAssertNil(d.next())
        d.feed(Array(f.dropFirst(5)) + StreamFrame.encode(.stdout, [0x41]))
        XCTAssertEqual(d.next()?.1, Array("err".utf8))
        XCTAssertEqual(d.next()?.0, .stdout)
        XCTAssertNil(d.next())
    }

    func testUnixTime() {
        XCTAssertEqual(LogReader.unixTime("1970-01-01T00:00:00Z"), 0)
        XCTAssertEqual(LogReader.unixTime("2026-11-29T17:00:00.5Z"), 1_795_971_600.5)
        XCTAssertNil(LogReader.unixTime("yesterday"))
    }

    /// A stats-dump image CRIU 4.2.1 wrote here for a busybox `sleep` container.
    func testCRIUStatsImage() {
        let bytes: [UInt8] = [0x40, 0x59, 0x10, 0x55, 0x06, 0x33, 0x09, 0x57, 0x23, 0x00, 0x00, 0x00,
                              0x0a, 0x21, 0x08, 0xfb, 0x04, 0x10, 0xd1, 0x9d, 0x12, 0x18, 0xe2, 0x0a, 0x20, 0xa5, 0x02,
                              0x28, 0x30, 0x30, 0x00, 0x38, 0x22, 0x40, 0x00, 0x48, 0x00, 0x50, 0x08, 0x58, 0x08,
                              0x60, 0x00, 0x68, 0x00, 0x70, 0x00]
        let s = CRIUDumpStats.parse(bytes)
        XCTAssertEqual(s?.freezingTimeUs, 635)
        XCTAssertEqual(s?.frozenTimeUs, 298705)
        XCTAssertEqual(s?.memdumpTimeUs, 1378)
        XCTAssertEqual(s?.memwriteTimeUs, 293)
        XCTAssertEqual(s?.pagesScanned, 48)
        XCTAssertEqual(s?.pagesWritten, 34)
        XCTAssertNil(CRIUDumpStats.parse(Array(bytes.prefix(20))))
        // A length-delimited field claiming ~2^64 bytes (it trapped converting to Int).
        let huge: [UInt8] = Array(bytes.prefix(8)) + [0x0b, 0x00, 0x00, 0x00,
                                                       0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00]
        XCTAssertNil(CRIUDumpStats.parse(huge))
    }
}

final class NetworkRequestTests: XCTestCase {
    func testCLICreateBodyWithPortsAndIP() throws {
        let body = """
        {"Image":"busybox","HostConfig":{"NetworkMode":"n1","PortBindings":{"8080/tcp":[{"HostIp":"","HostPort":"18080"}],"53/udp":null}},
         "NetworkingConfig":{"EndpointsConfig":{"n1":{"IPAMConfig":{"IPv4Address":"198.19.7.50","LinkLocalIPs":null},"Aliases":null,"MacAddress":""}}}}
        """
        let req = try JSONDecoder().decode(CreateContainerRequest.self, from: Data(body.utf8))
        let ports = try Engine.portMappings(req.hostConfig.PortBindings)
        XCTAssertEqual(ports.map(\.description), ["18080:8080/tcp"])
        XCTAssertEqual(Engine.requestedIP(req.networkingConfig, mode: "n1", network: nil), "198.19.7.50")
        XCTAssertNil(Engine.requestedIP(nil, mode: "n1", network: nil))
    }

    func testMacAddressFromEndpointOrConfig() throws {
        let cli = """
        {"Image":"busybox","HostConfig":{"NetworkMode":"n1"},
         "NetworkingConfig":{"EndpointsConfig":{"n1":{"MacAddress":"02:42:C6:13:00:2A"}}}}
        """
        let req = try JSONDecoder().decode(CreateContainerRequest.self, from: Data(cli.utf8))
        XCTAssertEqual(try Engine.requestedMAC(req.networkingConfig, config: req.config, mode: "n1", network: nil), "02:42:c6:13:00:2a")
        let old = try JSONDecoder().decode(CreateContainerRequest.self, from: Data(#"{"Image":"busybox","MacAddress":"02:42:c6:13:00:2b"}"#.utf8))
        XCTAssertEqual(try Engine.requestedMAC(old.networkingConfig, config: old.config, mode: nil, network: nil), "02:42:c6:13:00:2b")
        XCTAssertNil(try Engine.requestedMAC(nil, config: ContainerConfig(), mode: nil, network: nil))
        var bad = ContainerConfig()
        bad.MacAddress = "01:00:5e:00:00:01"
        XCTAssertThrowsError(try Engine.requestedMAC(nil, config: bad, mode: nil, network: nil)) { e in
            XCTAssertEqual((e as? EngineError)?.code, .invalidArgument)
        }
    }

    func testCheckpointNetworkRecordWithoutMAC() throws {
        // cryo-network.json written before MACs were recorded still reads; the MAC is then nil.
        let old = #"{"network":"n","networkID":"abc","ip":"198.19.7.5","ports":[]}"#
        let rec = try JSONDecoder().decode(CheckpointNetwork.self, from: Data(old.utf8))
        XCTAssertNil(rec.mac)
        XCTAssertEqual(rec.ip, "198.19.7.5")
        let new = try JSONDecoder().decode(CheckpointNetwork.self, from: JSONEncoder().encode(
            CheckpointNetwork(network: "n", networkID: "abc", ip: "198.19.7.5", ports: nil, mac: "02:42:c6:13:00:05")))
        XCTAssertEqual(new.mac, "02:42:c6:13:00:05")
    }

    func testRandomHostPortsAndPublishAll() throws {
        // An empty HostPort (`-p 80`) is a free port chosen at attach: host port 0 until then.
        let some = try Engine.portMappings(["80/tcp": [PortBinding(HostIp: "127.0.0.1", HostPort: "")]])
        XCTAssertEqual(some, [PortMapping(hostPort: 0, containerPort: 80, hostIP: "127.0.0.1")])
        // -P: every exposed port without a binding of its own.
        let all = try Engine.portMappings(["80/tcp": [PortBinding(HostIp: "", HostPort: "8080")]], publishAll: true,
                                          exposed: ["80/tcp", "53/udp", "90"])
        XCTAssertEqual(all.map(\.description), ["8080:80/tcp", "0:53/udp", "0:90/tcp"])
        XCTAssertFalse(PortMapping(hostPort: 0, containerPort: 1).clashes(with: PortMapping(hostPort: 0, containerPort: 2)))
        XCTAssertThrowsError(try Engine.portMappings(nil, publishAll: true, exposed: ["80/sctp"]))
    }

    func testPortBindingsRefused() {
        XCTAssertThrowsError(try Engine.portMappings(["80/tcp": [PortBinding(HostIp: "", HostPort: "x")]]))
        XCTAssertThrowsError(try Engine.portMappings(["80-90/tcp": [PortBinding(HostIp: "", HostPort: "8080")]]))
        XCTAssertThrowsError(try Engine.portMappings(["80/sctp": [PortBinding(HostIp: "", HostPort: "8080")]]))
    }

    func testEtcFilesAreBindMounted() throws {
        var input = SpecBuilder.Input(id: String(repeating: "a", count: 64), config: ContainerConfig(), hostConfig: HostConfig(), image: nil)
        input.config.Cmd = ["sh"]
        input.etcFilesDir = "/var/lib/cryo/containers/x"
        let spec = try SpecBuilder.build(input)
        for f in ["hostname", "hosts", "resolv.conf"] {
            let m = spec.mounts?.first { $0.destination == "/etc/" + f }
            XCTAssertEqual(m?.source, "/var/lib/cryo/containers/x/" + f)
            XCTAssertEqual(m?.type, "bind")
        }
    }

    func testShmIsAHostTmpfsBoundIn() throws {
        var input = SpecBuilder.Input(id: String(repeating: "a", count: 64), config: ContainerConfig(), hostConfig: HostConfig(), image: nil)
        input.config.Cmd = ["sh"]
        XCTAssertEqual(try SpecBuilder.build(input).mounts?.first { $0.destination == "/dev/shm" }?.type, "tmpfs")
        input.shmDir = "/var/lib/cryo/containers/x/shm"
        let shm = try SpecBuilder.build(input).mounts?.filter { $0.destination == "/dev/shm" }
        XCTAssertEqual(shm?.count, 1)
        XCTAssertEqual(shm?.first?.type, "bind")
        XCTAssertEqual(shm?.first?.source, "/var/lib/cryo/containers/x/shm")
        XCTAssertEqual(Set(shm?.first?.options ?? []).isSuperset(of: ["nosuid", "noexec", "nodev"]), true)
    }

    func testDevCgroupHolderAndMaskedDirectoriesFromTheHostTmpfs() throws {
        var input = SpecBuilder.Input(id: String(repeating: "a", count: 64), config: ContainerConfig(), hostConfig: HostConfig(), image: nil)
        input.config.Cmd = ["sh"]
        let plain = try SpecBuilder.build(input)
        XCTAssertEqual(plain.mounts?.first { $0.destination == "/dev" }?.type, "tmpfs")
        XCTAssertNil(plain.annotations?[RuntimeAnnotations.cgroupHolder])

        input.tmpfsDir = "/r/containers/x/tmpfs"
        input.maskedDirectories = ["/proc/acpi", "/sys/firmware", "/not/masked"]
        let spec = try SpecBuilder.build(input)
        let dev = spec.mounts?.filter { $0.destination == "/dev" }
        XCTAssertEqual(dev?.count, 1)
        XCTAssertEqual(dev?.first?.source, "/r/containers/x/tmpfs/dev")
        XCTAssertEqual(dev?.first?.isBind, true)
        XCTAssertFalse(dev?.first?.options?.contains("nodev") ?? true, "the device nodes must work")
        // /dev comes before the mounts inside it.
        let order = spec.mounts?.map(\.destination) ?? []
        XCTAssertLessThan(order.firstIndex(of: "/dev")!, order.firstIndex(of: "/dev/pts")!)
        XCTAssertEqual(spec.annotations?[RuntimeAnnotations.cgroupHolder], "/r/containers/x/tmpfs/cgroup")
        XCTAssertEqual(spec.annotations?["org.cryo.container.name"], input.id)
        // Masked directories: read-only binds of the empty directory, after /proc and /sys.
        for p in ["/proc/acpi", "/sys/firmware"] {
            let m = spec.mounts?.first { $0.destination == p }
            XCTAssertEqual(m?.source, "/r/containers/x/tmpfs/masked")
            XCTAssertEqual(m?.options?.contains("ro"), true)
            XCTAssertGreaterThan(order.firstIndex(of: p)!, order.firstIndex(of: "/" + String(p.split(separator: "/")[0]))!)
            XCTAssertFalse(spec.linux?.maskedPaths?.contains(p) ?? true)
        }
        XCTAssertNil(spec.mounts?.first { $0.destination == "/not/masked" })
        XCTAssertEqual(spec.linux?.maskedPaths?.contains("/proc/kcore"), true, "files stay masked paths")
        XCTAssertEqual(spec.linux?.maskedPaths?.contains("/proc/scsi"), true, "not a directory here: left to the runtime")

        input.hostConfig.Privileged = true
        let privileged = try SpecBuilder.build(input)
        XCTAssertNil(privileged.mounts?.first { $0.destination == "/proc/acpi" })
        XCTAssertEqual(privileged.linux?.maskedPaths, [])
    }
}

final class CheckpointDirectoryTests: XCTestCase {
    let paths = EnginePaths(root: "/var/lib/cryo", execRoot: "/run/cryo")

    func testAcceptsOrdinaryDirectoriesUnderTheRoot() throws {
        XCTAssertEqual(try CheckpointDirectory.lexicalCheck("/var/lib/cryo/cpdirs/web", paths: paths), "/var/lib/cryo/cpdirs/web")
        XCTAssertEqual(try CheckpointDirectory.lexicalCheck("/var/lib/cryo//saved/./x/", paths: paths), "/var/lib/cryo/saved/x")
    }

    func testRefusesOutsideStateAndTraversal() {
        for bad in ["relative/x", "/tmp/x", "/var/lib/cryo", "/var/lib/cryo/", "/var/lib/cryox/a",
                    "/var/lib/cryo/containers/abc", "/var/lib/cryo/images/layers/sha256/x",
                    "/var/lib/cryo/networks", "/var/lib/cryo/.hidden/x", "/var/lib/cryo/a/../containers/x",
                    "/var/lib/cryo/a/../../../etc"] {
            XCTAssertThrowsError(try CheckpointDirectory.lexicalCheck(bad, paths: paths), bad)
        }
        let inside = EnginePaths(root: "/var/lib/cryo", execRoot: "/var/lib/cryo/run")
        XCTAssertThrowsError(try CheckpointDirectory.lexicalCheck("/var/lib/cryo/run/x", paths: inside))
    }
}
