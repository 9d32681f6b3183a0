@testable import CryoAPI
@testable import CryoEngine
import CryoImages
import CryoMonitor
import CryoNetwork
import CryoOCI
import CryoRuntime
import FoundationEssentials
import Testing

@Suite struct StateMachineTests {
    @Test func allowedAndRefused() {
        #expect(StateMachine.check(.start, status: .created, id: "c") == nil)
        #expect(StateMachine.check(.start, status: .exited, id: "c") == nil)
        #expect(StateMachine.check(.start, status: .running, id: "c")?.code == .notModified)
        #expect(StateMachine.check(.stop, status: .exited, id: "c")?.code == .notModified)
        #expect(StateMachine.check(.kill, status: .exited, id: "c")?.code == .conflict)
        #expect(StateMachine.check(.remove, status: .running, id: "c")?.code == .conflict)
        #expect(StateMachine.check(.forceRemove, status: .running, id: "c") == nil)
        #expect(StateMachine.check(.pause, status: .paused, id: "c")?.code == .conflict)
        #expect(StateMachine.check(.unpause, status: .paused, id: "c") == nil)
        #expect(StateMachine.check(.checkpoint, status: .paused, id: "c")?.code == .conflict)
        #expect(StateMachine.check(.checkpoint, status: .running, id: "c") == nil)
        #expect(StateMachine.check(.restore, status: .running, id: "c")?.code == .conflict)
        #expect(StateMachine.check(.exec, status: .exited, id: "c")?.code == .conflict)
    }
}

@Suite struct SpecBuilderTests {
    func image(entrypoint: [String]? = nil, cmd: [String]? = nil, env: [String]? = nil) -> ImageConfiguration.Config {
        var c = ImageConfiguration.Config()
        c.Entrypoint = entrypoint
        c.Cmd = cmd
        c.Env = env
        return c
    }

    @Test func commandRules() throws {
        var req = ContainerConfig()
        #expect(try SpecBuilder.command(request: req, image: image(cmd: ["sh"])) == ["sh"])
        req.Cmd = ["echo", "hi"]
        #expect(try SpecBuilder.command(request: req, image: image(entrypoint: ["/init"], cmd: ["sh"])) == ["/init", "echo", "hi"])
        req.Cmd = nil
        req.Entrypoint = ["top"]
        #expect(try SpecBuilder.command(request: req, image: image(entrypoint: ["/init"], cmd: ["sh"])) == ["top"], "--entrypoint drops the image's Cmd")
        req.Entrypoint = [""]
        if let e = #expect(throws: (any Error).self, performing: { try SpecBuilder.command(request: req, image: image(entrypoint: ["/init"])) }) {
            #expect((e as? EngineError)?.code == .invalidArgument)
        }
    }

    @Test func environmentOverrides() {
        let env = SpecBuilder.environment(request: ["A=2", "C=3"], image: ["A=1", "PATH=/bin"], hostname: "h", tty: true)
        #expect(env == ["PATH=/bin", "HOSTNAME=h", "TERM=xterm", "A=2", "C=3"])
    }

    @Test func bindMounts() throws {
        let m = try SpecBuilder.bindMount("/src:/dst:ro")
        #expect(m.source == "/src")
        #expect(m.destination == "/dst")
        #expect(m.options == ["rbind", "ro", "rprivate"])
        #expect(throws: (any Error).self) { try SpecBuilder.bindMount("vol:/dst") }
        #expect(throws: (any Error).self) { try SpecBuilder.bindMount("/src:dst") }
        #expect(throws: (any Error).self) { try SpecBuilder.bindMount("/src:/dst:bogus") }
    }

    @Test func users() throws {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\nweb:x:33:33::/:/bin/sh\n"
        let group = "root:x:0:\nwww:x:33:\nextra:x:50:web\n"
        #expect(try SpecBuilder.user("web", passwd: passwd, group: group) == Spec.User(uid: 33, gid: 33, additionalGids: [50]))
        #expect(try SpecBuilder.user("1000:2000", passwd: passwd, group: group).gid == 2000)
        #expect(try SpecBuilder.user("nobody:www", passwd: passwd, group: group) == Spec.User(uid: 65534, gid: 33))
        #expect(throws: (any Error).self) { try SpecBuilder.user("ghost", passwd: passwd, group: group) }
    }

    @Test func resourcesAndNamespaces() throws {
        var req = ContainerConfig()
        req.Cmd = ["sh"]
        var host = HostConfig()
        host.Memory = 64 << 20
        host.NanoCpus = 1_500_000_000
        host.PidsLimit = 20
        var input = SpecBuilder.Input(id: String(repeating: "a", count: 64), config: req, hostConfig: host, image: nil)
        input.networkNamespacePath = "/run/cryo/netns/x"
        let spec = try SpecBuilder.build(input)
        #expect(spec.linux?.resources?.memory?.limit == (64 << 20))
        #expect(spec.linux?.resources?.cpu?.quota == 150_000)
        #expect(spec.linux?.resources?.cpu?.period == 100_000)
        #expect(spec.linux?.resources?.pids?.limit == 20)
        #expect(spec.hostname == "aaaaaaaaaaaa")
        #expect(spec.root?.readonly == false)
        #expect((spec.linux?.namespaces?.first { $0.type == "network" }?.path) == "/run/cryo/netns/x")
        host.NetworkMode = "host"
        let hostSpec = try SpecBuilder.build(SpecBuilder.Input(id: "b", config: req, hostConfig: host, image: nil))
        #expect((hostSpec.linux?.namespaces?.first { $0.type == "network" }) == nil)
        host.Memory = 1024
        #expect(throws: (any Error).self) { try SpecBuilder.build(SpecBuilder.Input(id: "b", config: req, hostConfig: host, image: nil)) }
    }
}

@Suite struct APIModelTests {
    @Test func dockerPyLeanCreateBody() throws {
        let body = #"{"Tty": false, "OpenStdin": false, "StdinOnce": false, "AttachStdin": false, "AttachStdout": false, "AttachStderr": false, "Cmd": ["echo", "hi"], "Image": "busybox", "NetworkDisabled": false, "HostConfig": {"NetworkMode": "default"}}"#
        let r = try JSONDecoder().decode(CreateContainerRequest.self, from: Data(body.utf8))
        #expect(r.config.Cmd == ["echo", "hi"])
        #expect(r.config.Image == "busybox")
        #expect(r.hostConfig.NetworkMode == "default")
    }

    @Test func cliBodyWithNullsAndUnknownKeys() throws {
        let body = #"{"Hostname":"","Env":null,"Cmd":["sh"],"Image":"busybox","Volumes":{},"Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"AutoRemove":true,"LogConfig":{"Type":"","Config":{}},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"ConsoleSize":[40,100],"Memory":0,"NanoCpus":0,"MemorySwappiness":-1,"CapAdd":null},"NetworkingConfig":{"EndpointsConfig":{"default":{}}}}"#
        let r = try JSONDecoder().decode(CreateContainerRequest.self, from: Data(body.utf8))
        #expect(r.hostConfig.AutoRemove == true)
        #expect(r.hostConfig.ConsoleSize == [40, 100])
        #expect(r.config.Env == nil)
    }

    @Test func decodingErrorNamesTheField() throws {
        let body = #"{"Image":"busybox","HostConfig":{"Memory":"lots"}}"#
        do {
            _ = try JSONDecoder().decode(CreateContainerRequest.self, from: Data(body.utf8))
            Issue.record("decoded a string memory")
        } catch let e as DecodingError {
            #expect(describe(e).contains("HostConfig.Memory"), "\(describe(e))")
        } catch { Issue.record("\(error)") }
    }

    @Test func versionPrefixAndFlags() {
        #expect(APIServer.stripVersion("/v1.50/containers/json").0 == "/containers/json")
        #expect(APIServer.stripVersion("/v1.50/containers/json").1 == "1.50")
        #expect(APIServer.stripVersion("/_ping").0 == "/_ping")
        #expect(APIServer.stripVersion("/version").1 == nil)
        #expect(APIServer.compare("1.12", "1.24") < 0)
        #expect(APIServer.compare("1.50", "1.50") == 0)
        #expect(flag(["force": "True"], "force"))
        #expect(!flag(["force": "False"], "force"))
        #expect(!flag(["v": "0"], "v"))
        #expect(!flag(["v": "none"], "v"))
        #expect(flag(["all": "1"], "all"))
    }

    @Test func names() throws {
        #expect(try Names.validate("/web-1") == "web-1")
        #expect(throws: (any Error).self) { try Names.validate("-bad") }
        #expect(throws: (any Error).self) { try Names.validate("a/b") }
        #expect(throws: (any Error).self, "fails at start on the network otherwise") { try Names.validate(String(repeating: "a", count: 254)) }
        #expect(throws: Never.self) { try Names.validate(String(repeating: "a", count: 253)) }
        #expect(throws: (any Error).self) { try Names.validateCheckpoint("..") }
        #expect(throws: (any Error).self) { try Names.validateCheckpoint("a/b") }
        #expect(throws: Never.self) { try Names.validateCheckpoint("cp1.v2") }
        #expect(Names.randomID().count == 64)
    }
}

@Suite struct LogAndStreamTests {
    @Test func jsonLogLineRoundTrip() {
        let line = JSONLogLine(log: "a \"q\" \\ tab\t\u{1}\n", stream: "stderr", time: "2026-11-29T17:00:00.000000001Z")
        let bytes = line.encoded()
        #expect(bytes.last == 0x0a)
        #expect(JSONLogLine.decode(bytes.dropLast()) == line)
    }

    @Test func lineSplitter() {
        var s = LineSplitter()
        #expect(s.feed(Array("ab\ncd".utf8)) == [Array("ab\n".utf8)])
        #expect(s.feed(Array("e\n".utf8)) == [Array("cde\n".utf8)])
        #expect(s.feed(Array("tail".utf8)) == [])
        #expect(s.flush() == Array("tail".utf8))
        #expect(s.feed([UInt8](repeating: 0x41, count: LineSplitter.maxPartial + 1)).count == 1)
    }

    @Test func frames() {
        let f = StreamFrame.encode(.stderr, Array("err".utf8))
        #expect(f == [2, 0, 0, 0, 0, 0, 0, 3, 0x65, 0x72, 0x72])
        var d = StreamFrame.Decoder()
        d.feed(Array(f.prefix(5)))
        #expect(d.next() == nil)
        d.feed(Array(f.dropFirst(5)) + StreamFrame.encode(.stdout, [0x41]))
        #expect(d.next()?.1 == Array("err".utf8))
        #expect(d.next()?.0 == .stdout)
        #expect(d.next() == nil)
    }

    @Test func unixTime() {
        #expect(LogReader.unixTime("1970-01-01T00:00:00Z") == 0)
        #expect(LogReader.unixTime("2026-11-29T17:00:00.5Z") == 1_795_971_600.5)
        #expect(LogReader.unixTime("yesterday") == nil)
    }

    /// A stats-dump image CRIU 4.2.1 wrote here for a busybox `sleep` container.
    @Test func criuStatsImage() {
        let bytes: [UInt8] = [0x40, 0x59, 0x10, 0x55, 0x06, 0x33, 0x09, 0x57, 0x23, 0x00, 0x00, 0x00,
                              0x0a, 0x21, 0x08, 0xfb, 0x04, 0x10, 0xd1, 0x9d, 0x12, 0x18, 0xe2, 0x0a, 0x20, 0xa5, 0x02,
                              0x28, 0x30, 0x30, 0x00, 0x38, 0x22, 0x40, 0x00, 0x48, 0x00, 0x50, 0x08, 0x58, 0x08,
                              0x60, 0x00, 0x68, 0x00, 0x70, 0x00]
        let s = CRIUDumpStats.parse(bytes)
        #expect(s?.freezingTimeUs == 635)
        #expect(s?.frozenTimeUs == 298705)
        #expect(s?.memdumpTimeUs == 1378)
        #expect(s?.memwriteTimeUs == 293)
        #expect(s?.pagesScanned == 48)
        #expect(s?.pagesWritten == 34)
        #expect(CRIUDumpStats.parse(Array(bytes.prefix(20))) == nil)
        // A length-delimited field claiming ~2^64 bytes (it trapped converting to Int).
        let huge: [UInt8] = Array(bytes.prefix(8)) + [0x0b, 0x00, 0x00, 0x00,
                                                       0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00]
        #expect(CRIUDumpStats.parse(huge) == nil)
    }
}

@Suite struct NetworkRequestTests {
    @Test func cliCreateBodyWithPortsAndIP() throws {
        let body = """
        {"Image":"busybox","HostConfig":{"NetworkMode":"n1","PortBindings":{"8080/tcp":[{"HostIp":"","HostPort":"18080"}],"53/udp":null}},
         "NetworkingConfig":{"EndpointsConfig":{"n1":{"IPAMConfig":{"IPv4Address":"198.19.7.50","LinkLocalIPs":null},"Aliases":null,"MacAddress":""}}}}
        """
        let req = try JSONDecoder().decode(CreateContainerRequest.self, from: Data(body.utf8))
        let ports = try Engine.portMappings(req.hostConfig.PortBindings)
        #expect(ports.map(\.description) == ["18080:8080/tcp"])
        #expect(Engine.requestedIP(req.networkingConfig, mode: "n1", network: nil) == "198.19.7.50")
        #expect(Engine.requestedIP(nil, mode: "n1", network: nil) == nil)
    }

    @Test func macAddressFromEndpointOrConfig() throws {
        let cli = """
        {"Image":"busybox","HostConfig":{"NetworkMode":"n1"},
         "NetworkingConfig":{"EndpointsConfig":{"n1":{"MacAddress":"02:42:C6:13:00:2A"}}}}
        """
        let req = try JSONDecoder().decode(CreateContainerRequest.self, from: Data(cli.utf8))
        #expect(try Engine.requestedMAC(req.networkingConfig, config: req.config, mode: "n1", network: nil) == "02:42:c6:13:00:2a")
        let old = try JSONDecoder().decode(CreateContainerRequest.self, from: Data(#"{"Image":"busybox","MacAddress":"02:42:c6:13:00:2b"}"#.utf8))
        #expect(try Engine.requestedMAC(old.networkingConfig, config: old.config, mode: nil, network: nil) == "02:42:c6:13:00:2b")
        #expect(try Engine.requestedMAC(nil, config: ContainerConfig(), mode: nil, network: nil) == nil)
        var bad = ContainerConfig()
        bad.MacAddress = "01:00:5e:00:00:01"
        if let e = #expect(throws: (any Error).self, performing: { try Engine.requestedMAC(nil, config: bad, mode: nil, network: nil) }) {
            #expect((e as? EngineError)?.code == .invalidArgument)
        }
    }

    @Test func checkpointNetworkRecordWithoutMAC() throws {
        // cryo-network.json written before MACs were recorded still reads; the MAC is then nil.
        let old = #"{"network":"n","networkID":"abc","ip":"198.19.7.5","ports":[]}"#
        let rec = try JSONDecoder().decode(CheckpointNetwork.self, from: Data(old.utf8))
        #expect(rec.mac == nil)
        #expect(rec.ip == "198.19.7.5")
        let new = try JSONDecoder().decode(CheckpointNetwork.self, from: JSONEncoder().encode(
            CheckpointNetwork(network: "n", networkID: "abc", ip: "198.19.7.5", ports: nil, mac: "02:42:c6:13:00:05")))
        #expect(new.mac == "02:42:c6:13:00:05")
    }

    @Test func randomHostPortsAndPublishAll() throws {
        // An empty HostPort (`-p 80`) is a free port chosen at attach: host port 0 until then.
        let some = try Engine.portMappings(["80/tcp": [PortBinding(HostIp: "127.0.0.1", HostPort: "")]])
        #expect(some == [PortMapping(hostPort: 0, containerPort: 80, hostIP: "127.0.0.1")])
        // -P: every exposed port without a binding of its own.
        let all = try Engine.portMappings(["80/tcp": [PortBinding(HostIp: "", HostPort: "8080")]], publishAll: true,
                                          exposed: ["80/tcp", "53/udp", "90"])
        #expect(all.map(\.description) == ["8080:80/tcp", "0:53/udp", "0:90/tcp"])
        #expect(!PortMapping(hostPort: 0, containerPort: 1).clashes(with: PortMapping(hostPort: 0, containerPort: 2)))
        #expect(throws: (any Error).self) { try Engine.portMappings(nil, publishAll: true, exposed: ["80/sctp"]) }
    }

    @Test func portBindingsRefused() throws {
        #expect(throws: (any Error).self) { try Engine.portMappings(["80/tcp": [PortBinding(HostIp: "", HostPort: "x")]]) }
        #expect(throws: (any Error).self) { try Engine.portMappings(["80-90/tcp": [PortBinding(HostIp: "", HostPort: "8080")]]) }
        #expect(throws: (any Error).self) { try Engine.portMappings(["80/sctp": [PortBinding(HostIp: "", HostPort: "8080")]]) }
    }

    @Test func etcFilesAreBindMounted() throws {
        var input = SpecBuilder.Input(id: String(repeating: "a", count: 64), config: ContainerConfig(), hostConfig: HostConfig(), image: nil)
        input.config.Cmd = ["sh"]
        input.etcFilesDir = "/var/lib/cryo/containers/x"
        let spec = try SpecBuilder.build(input)
        for f in ["hostname", "hosts", "resolv.conf"] {
            let m = spec.mounts?.first { $0.destination == "/etc/" + f }
            #expect(m?.source == ("/var/lib/cryo/containers/x/" + f))
            #expect(m?.type == "bind")
        }
    }

    @Test func shmIsAHostTmpfsBoundIn() throws {
        var input = SpecBuilder.Input(id: String(repeating: "a", count: 64), config: ContainerConfig(), hostConfig: HostConfig(), image: nil)
        input.config.Cmd = ["sh"]
        #expect(try (SpecBuilder.build(input).mounts?.first { $0.destination == "/dev/shm" }?.type) == "tmpfs")
        input.shmDir = "/var/lib/cryo/containers/x/shm"
        let shm = try SpecBuilder.build(input).mounts?.filter { $0.destination == "/dev/shm" }
        #expect(shm?.count == 1)
        #expect(shm?.first?.type == "bind")
        #expect(shm?.first?.source == "/var/lib/cryo/containers/x/shm")
        #expect(Set(shm?.first?.options ?? []).isSuperset(of: ["nosuid", "noexec", "nodev"]) == true)
    }

    @Test func devCgroupHolderAndMaskedDirectoriesFromTheHostTmpfs() throws {
        var input = SpecBuilder.Input(id: String(repeating: "a", count: 64), config: ContainerConfig(), hostConfig: HostConfig(), image: nil)
        input.config.Cmd = ["sh"]
        let plain = try SpecBuilder.build(input)
        #expect((plain.mounts?.first { $0.destination == "/dev" }?.type) == "tmpfs")
        #expect(plain.annotations?[RuntimeAnnotations.cgroupHolder] == nil)

        input.tmpfsDir = "/r/containers/x/tmpfs"
        input.maskedDirectories = ["/proc/acpi", "/sys/firmware", "/not/masked"]
        let spec = try SpecBuilder.build(input)
        let dev = spec.mounts?.filter { $0.destination == "/dev" }
        #expect(dev?.count == 1)
        #expect(dev?.first?.source == "/r/containers/x/tmpfs/dev")
        #expect(dev?.first?.isBind == true)
        #expect(!(dev?.first?.options?.contains("nodev") ?? true), "the device nodes must work")
        // /dev comes before the mounts inside it.
        let order = spec.mounts?.map(\.destination) ?? []
        #expect(order.firstIndex(of: "/dev")! < order.firstIndex(of: "/dev/pts")!)
        #expect(spec.annotations?[RuntimeAnnotations.cgroupHolder] == "/r/containers/x/tmpfs/cgroup")
        #expect(spec.annotations?["org.cryo.container.name"] == input.id)
        // Masked directories: read-only binds of the empty directory, after /proc and /sys.
        for p in ["/proc/acpi", "/sys/firmware"] {
            let m = spec.mounts?.first { $0.destination == p }
            #expect(m?.source == "/r/containers/x/tmpfs/masked")
            #expect(m?.options?.contains("ro") == true)
            #expect(order.firstIndex(of: p)! > order.firstIndex(of: "/" + String(p.split(separator: "/")[0]))!)
            #expect(!(spec.linux?.maskedPaths?.contains(p) ?? true))
        }
        #expect((spec.mounts?.first { $0.destination == "/not/masked" }) == nil)
        #expect(spec.linux?.maskedPaths?.contains("/proc/kcore") == true, "files stay masked paths")
        #expect(spec.linux?.maskedPaths?.contains("/proc/scsi") == true, "not a directory here: left to the runtime")

        input.hostConfig.Privileged = true
        let privileged = try SpecBuilder.build(input)
        #expect((privileged.mounts?.first { $0.destination == "/proc/acpi" }) == nil)
        #expect(privileged.linux?.maskedPaths == [])
    }
}

@Suite struct CheckpointDirectoryTests {
    let paths = EnginePaths(root: "/var/lib/cryo", execRoot: "/run/cryo")

    @Test func acceptsOrdinaryDirectoriesUnderTheRoot() throws {
        #expect(try CheckpointDirectory.lexicalCheck("/var/lib/cryo/cpdirs/web", paths: paths) == "/var/lib/cryo/cpdirs/web")
        #expect(try CheckpointDirectory.lexicalCheck("/var/lib/cryo//saved/./x/", paths: paths) == "/var/lib/cryo/saved/x")
    }

    @Test func refusesOutsideStateAndTraversal() throws {
        for bad in ["relative/x", "/tmp/x", "/var/lib/cryo", "/var/lib/cryo/", "/var/lib/cryox/a",
                    "/var/lib/cryo/containers/abc", "/var/lib/cryo/images/layers/sha256/x",
                    "/var/lib/cryo/networks", "/var/lib/cryo/.hidden/x", "/var/lib/cryo/a/../containers/x",
                    "/var/lib/cryo/a/../../../etc"] {
            #expect(throws: (any Error).self, "\(bad)") { try CheckpointDirectory.lexicalCheck(bad, paths: paths) }
        }
        let inside = EnginePaths(root: "/var/lib/cryo", execRoot: "/var/lib/cryo/run")
        #expect(throws: (any Error).self) { try CheckpointDirectory.lexicalCheck("/var/lib/cryo/run/x", paths: inside) }
    }
}
