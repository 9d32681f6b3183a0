import CryoLinux
import Foundation
import Glibc
import CryoTestSupport
import Testing
@testable import CryoNetwork

@Suite struct SubnetTests {
    @Test func parseAndOverlap() throws {
        let a = try IPv4Subnet.parse("198.18.0.0/24")
        #expect(a.firstHost.description == "198.18.0.1")
        #expect(a.broadcast.description == "198.18.0.255")
        #expect(a.contains(IPv4Address("198.18.0.77")!))
        #expect(!a.contains(IPv4Address("198.18.1.1")!))
        let wide = try IPv4Subnet.parse("198.18.0.0/15")
        #expect(wide.overlaps(a) && a.overlaps(wide))
        #expect(!a.overlaps(try IPv4Subnet.parse("198.18.1.0/24")))
        #expect(try IPv4Subnet.parse("198.18.0.128/25").overlaps(a))
    }

    @Test func badCIDR() throws {
        for bad in ["198.18.0.0", "198.18.0.0/33", "198.18.0/24", "198.18.0.256/24", "x/24", "198.18.0.0/", "198.18.0.0/31", "198.018.0.0/24"] {
            assertThrowsNetworkError(try IPv4Subnet.parse(bad)) { if case .invalidSubnet = $0 { return true }; return false }
        }
        assertThrowsNetworkError(try IPv4Subnet.parse("198.18.0.5/24")) {
            $0.description.contains("did you mean 198.18.0.0/24")
        }
    }
}

@Suite struct NetworkStoreTests {
    @Test func createDefaultsAndOverlap() throws {
        let s = try TempDir(); defer { s.remove() }
        let store = try NetworkStore(root: s.path)
        let def = try store.ensureDefault()
        #expect(def.name == "cryo0")
        #expect(def.bridge == "cryo0")
        #expect(def.subnet == "198.18.0.0/24")
        #expect(def.gateway == "198.18.0.1")
        #expect(try store.ensureDefault().id == def.id, "ensureDefault is idempotent")

        let n1 = try store.create(name: "web", labels: ["a": "b"])
        #expect(n1.subnet == "198.18.1.0/24", "next free /24 inside 198.18.0.0/15")
        #expect(n1.gateway == "198.18.1.1")
        #expect(n1.bridge == ("cryo-" + n1.id.prefix(10)))
        #expect(n1.bridge.count <= 15)
        #expect(n1.id.count == 64)
        #expect(n1.driver == "bridge")

        let n2 = try store.create(name: "db", subnet: "198.19.7.0/24", gateway: "198.19.7.254", internal: true)
        #expect(n2.gateway == "198.19.7.254")
        #expect(n2.internal)
        #expect(try store.create(name: "next").subnet == "198.18.2.0/24")

        let before = try FS.readBytes(store.paths.networksFile)
        assertThrowsNetworkError(try store.create(name: "clash", subnet: "198.19.0.0/16")) {
            if case .subnetOverlap(_, let net, _) = $0 { return net == "db" }; return false
        }
        assertThrowsNetworkError(try store.create(name: "clash", subnet: "198.18.0.128/25")) {
            if case .subnetOverlap(_, let net, _) = $0 { return net == "cryo0" }; return false
        }
        assertThrowsNetworkError(try store.create(name: "web", subnet: "198.19.100.0/24")) { $0 == .nameInUse("web") }
        assertThrowsNetworkError(try store.create(name: "bad", subnet: "198.19.100.0/24", gateway: "198.19.101.1")) {
            if case .invalidGateway = $0 { return true }; return false
        }
        assertThrowsNetworkError(try store.create(name: "bad", subnet: "198.19.100.0/24", gateway: "198.19.100.255")) {
            if case .invalidGateway = $0 { return true }; return false
        }
        assertThrowsNetworkError(try store.create(name: "bad", subnet: "not-a-cidr")) {
            if case .invalidSubnet = $0 { return true }; return false
        }
        assertThrowsNetworkError(try store.create(name: "bad", subnet: "198.19.100.0/24", bridge: "a-very-long-bridge-name")) {
            if case .invalidBridge = $0 { return true }; return false
        }
        assertThrowsNetworkError(try store.create(name: "bad", subnet: "198.19.100.0/24", bridge: "cryo0")) {
            if case .bridgeInUse = $0 { return true }; return false
        }
        assertThrowsNetworkError(try store.create(name: "-bad")) { if case .invalidName = $0 { return true }; return false }
        #expect(try FS.readBytes(store.paths.networksFile) == before, "refusals write nothing")

        #expect(try store.list().map(\.name) == ["cryo0", "web", "db", "next"])
        #expect(try store.inspect(String(n2.id.prefix(8))).name == "db")
        #expect(try store.inspect("web").id == n1.id)
        assertThrowsNetworkError(try store.inspect("nope")) { $0 == .notFound("nope") }
    }

    @Test func remove() throws {
        let s = try TempDir(); defer { s.remove() }
        let store = try NetworkStore(root: s.path)
        try store.ensureDefault()
        let n = try store.create(name: "tmp", subnet: "198.19.9.0/24")
        assertThrowsNetworkError(try store.remove("cryo0")) { $0 == .predefined("cryo0") }

        // An address still allocated by host-local: removal refused, naming the container.
        let dir = store.paths.ipamDir(network: "tmp")
        try FS.mkdirAll(dir)
        try FS.atomicWrite(dir + "/198.19.9.2", Array("c0ffee\r\neth0".utf8))
        try FS.atomicWrite(dir + "/last_reserved_ip.0", Array("198.19.9.2".utf8))
        assertThrowsNetworkError(try store.remove("tmp")) { $0 == .activeEndpoints(network: "tmp", containers: ["c0ffee"]) }
        unlink(dir + "/198.19.9.2")
        #expect(try store.remove(n.id).name == "tmp")
        #expect(!FS.exists(dir), "the network's IPAM directory goes with it")
        #expect(try store.list().map(\.name) == ["cryo0"])
        // The subnet is free again.
        #expect(try store.create(name: "again", subnet: "198.19.9.0/24").subnet == "198.19.9.0/24")
    }

    @Test func macvlanCreateAndRefusals() throws {
        let s = try TempDir(); defer { s.remove() }
        let store = try NetworkStore(root: s.path)
        try store.ensureDefault()
        // "lo" exists in every network namespace: a parent the test can count on.
        let mv = try store.create(name: "lan", driver: NetworkDriver.macvlan, subnet: "198.19.7.0/24", ipRange: "198.19.7.64/27",
                                  parent: "lo")
        #expect(mv.driver == "macvlan")
        #expect(mv.parent == "lo")
        #expect(mv.macvlanMode == "bridge")
        #expect(mv.gateway == "198.19.7.1")
        #expect(mv.ipRange == "198.19.7.64/27")
        #expect(mv.bridge == "")
        let before = try FS.readBytes(store.paths.networksFile)
        func refused(_ f: @autoclosure () throws -> NetworkConfig, _ match: (NetworkError) -> Bool) {
            assertThrowsNetworkError(try f(), match)
        }
        refused(try store.create(name: "a", driver: "macvlan", parent: "lo")) { if case .invalidOption(let m) = $0 { return m.contains("--subnet") }; return false }
        refused(try store.create(name: "a", driver: "macvlan", subnet: "198.19.8.0/24")) { if case .invalidOption(let m) = $0 { return m.contains("parent") }; return false }
        refused(try store.create(name: "a", driver: "macvlan", subnet: "198.19.8.0/24", parent: "nosuch-if0")) { if case .invalidParent = $0 { return true }; return false }
        refused(try store.create(name: "a", driver: "macvlan", subnet: "198.19.8.0/24", parent: "lo")) { $0 == .parentInUse(parent: "lo", network: "lan") }
        refused(try store.create(name: "a", driver: "ipvlan", subnet: "198.19.8.0/24")) { if case .invalidOption = $0 { return true }; return false }
        refused(try store.create(name: "a", subnet: "198.19.8.0/24", ipRange: "198.19.9.0/28")) { if case .invalidIPRange = $0 { return true }; return false }
        refused(try store.create(name: "a", subnet: "198.19.8.0/24", gateway: "198.19.8.5", ipRange: "198.19.8.5/32")) { if case .invalidIPRange = $0 { return true }; return false }
        #expect(try FS.readBytes(store.paths.networksFile) == before, "refusals write nothing")
        // Records written before macvlan (no parent/macvlanMode/ipRange keys) still read.
        let old = #"{"networks":[{"name":"n","id":"\#(String(repeating: "e", count: 64))","driver":"bridge","subnet":"198.19.3.0/24","gateway":"198.19.3.1","bridge":"cryo-eeeeeeeeee","internal":false,"labels":{},"created":"x"}]}"#
        try FS.atomicWrite(store.paths.networksFile, Array(old.utf8))
        #expect(try store.inspect("n").parent == nil)
    }

    @Test func reserveAndRelease() throws {
        let s = try TempDir(); defer { s.remove() }
        let store = try NetworkStore(root: s.path)
        let net = try store.create(name: "lan", subnet: "198.19.7.0/24")
        let cni = try CNIRunner(root: s.path)
        try cni.reserve(network: net, ip: "198.19.7.70", owner: "migrant")
        let file = store.paths.ipamDir(network: "lan") + "/198.19.7.70"
        #expect(try FS.readString(file) == "migrant\r\neth0", "host-local's own format: its allocation skips it")
        try cni.reserve(network: net, ip: "198.19.7.70", owner: "migrant")   // idempotent
        assertThrowsNetworkError(try cni.reserve(network: net, ip: "198.19.7.70", owner: "other")) {
            $0 == .ipInUse(ip: "198.19.7.70", network: "lan", container: "migrant")
        }
        assertThrowsNetworkError(try cni.reserve(network: net, ip: "198.19.7.1", owner: "x")) { if case .ipNotAssignable = $0 { return true }; return false }
        assertThrowsNetworkError(try cni.reserve(network: net, ip: "198.19.7.255", owner: "x")) { if case .ipNotAssignable = $0 { return true }; return false }
        assertThrowsNetworkError(try cni.reserve(network: net, ip: "198.19.8.2", owner: "x")) { if case .ipOutsideSubnet = $0 { return true }; return false }
        assertThrowsNetworkError(try cni.reserve(network: net, ip: "198.19.7.9", owner: "a/b")) { if case .invalidName = $0 { return true }; return false }
        assertThrowsNetworkError(try store.remove("lan")) { $0 == .activeEndpoints(network: "lan", containers: ["migrant"]) }
        try cni.release(network: net, ip: "198.19.7.70")
        #expect(!FS.exists(file))
        try cni.release(network: net, ip: "198.19.7.70")   // nothing to release: fine
        try cni.reserve(network: net, ip: "198.19.7.70", owner: "other")
    }

    @Test func defaultSubnetConfigurable() throws {
        let s = try TempDir(); defer { s.remove() }
        let store = try NetworkStore(root: s.path)
        let d = try store.ensureDefault(subnet: "198.19.200.0/24")
        #expect(d.gateway == "198.19.200.1")
        let d2 = try store.ensureDefault(subnet: "198.19.201.0/24")
        #expect(d2.id == d.id)
        #expect(d2.subnet == "198.19.201.0/24")
        #expect(try store.create(name: "u").subnet == "198.18.0.0/24", "first free /24 of the pool")
    }

    @Test func freeSubnetSearch() throws {
        let pool = try IPv4Subnet.parse("198.18.0.0/15")
        let taken = [try IPv4Subnet.parse("198.18.0.0/16"), try IPv4Subnet.parse("198.19.0.0/24")]
        #expect(NetworkStore.nextFreeSubnet(pool: pool, taken: taken)?.description == "198.19.1.0/24")
        #expect(NetworkStore.nextFreeSubnet(pool: pool, taken: [pool]) == nil)
    }
}

@Suite struct CNIConfigTests {
    let net = NetworkConfig(name: "web", id: String(repeating: "ab", count: 32), subnet: "198.18.5.0/24",
                            gateway: "198.18.5.1", bridge: "cryo-ababababab", created: "2025-01-01T00:00:00Z")

    @Test func conflist() throws {
        let c = CNIConfig.conflist(for: net, ipamDataDir: "/var/lib/cryo/networks/ipam")
        let expected: JSONValue = [
            "cniVersion": "1.0.0",
            "name": "web",
            "plugins": [
                [
                    "type": "bridge", "bridge": "cryo-ababababab", "isGateway": true, "ipMasq": false, "hairpinMode": true,
                    "capabilities": ["ips": true, "mac": true],
                    "ipam": [
                        "type": "host-local", "dataDir": "/var/lib/cryo/networks/ipam",
                        "ranges": [[["subnet": "198.18.5.0/24", "gateway": "198.18.5.1"]]],
                        "routes": [["dst": "0.0.0.0/0"]],
                    ],
                ],
                ["type": "portmap", "snat": true, "capabilities": ["portMappings": true]],
            ],
        ]
        #expect(c == expected)
        var internalNet = net
        internalNet.internal = true
        #expect(CNIConfig.conflist(for: internalNet, ipamDataDir: "/x")["plugins"]?.arrayValue?[0]["ipam"]?["routes"] == [])
    }

    @Test func pluginConfigChainsAndFiltersCapabilities() throws {
        let c = CNIConfig.conflist(for: net, ipamDataDir: "/d")
        let args = CNIConfig.runtimeArgs(ip: IPv4Address("198.18.5.9"), ports: [PortMapping(hostPort: 8080, containerPort: 80)])
        let bridge = CNIConfig.pluginConfig(c, index: 0, runtimeArgs: args, prevResult: nil)
        #expect(bridge["name"] == "web")
        #expect(bridge["cniVersion"] == "1.0.0")
        #expect(bridge["runtimeConfig"] == ["ips": ["198.18.5.9"]], "bridge only gets what it declared")
        #expect(bridge["prevResult"] == nil)
        let prev: JSONValue = ["cniVersion": "1.0.0", "ips": [["address": "198.18.5.9/24"]]]
        let pm = CNIConfig.pluginConfig(c, index: 1, runtimeArgs: args, prevResult: prev)
        #expect(pm["runtimeConfig"] == ["portMappings": [["hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""]]])
        #expect(pm["prevResult"] == prev)
        #expect(pm["type"] == "portmap")
        let noArgs = CNIConfig.pluginConfig(c, index: 1, runtimeArgs: [:], prevResult: nil)
        #expect(noArgs["runtimeConfig"] == nil)
        // Encoded compactly with sorted keys and unescaped slashes.
        let text = String(decoding: try bridge.encoded(), as: UTF8.self)
        #expect(text.hasPrefix("{\"bridge\":\"cryo-ababababab\",\"capabilities\":{\"ips\":true,\"mac\":true},\"cniVersion\":\"1.0.0\""), "\(text)")
        #expect(text.contains("\"dataDir\":\"/d\""), "\(text)")
    }

    @Test func macvlanConflistAndIPRange() throws {
        var mv = NetworkConfig(name: "lan", id: String(repeating: "cd", count: 32), driver: NetworkDriver.macvlan,
                               subnet: "198.19.7.0/24", gateway: "198.19.7.1", bridge: "", created: "2025-01-01T00:00:00Z")
        mv.parent = "eth0"
        mv.macvlanMode = "bridge"
        mv.ipRange = "198.19.7.64/27"
        let c = CNIConfig.conflist(for: mv, ipamDataDir: "/d")
        #expect(CNIConfig.pluginTypes(c) == ["macvlan"], "no portmap on macvlan")
        let plugin = c["plugins"]?.arrayValue?[0]
        #expect(plugin?["master"] == "eth0")
        #expect(plugin?["mode"] == "bridge")
        #expect(plugin?["capabilities"] == ["ips": true, "mac": true])
        #expect(plugin?["ipam"]?["ranges"] == [[["subnet": "198.19.7.0/24", "gateway": "198.19.7.1", "rangeStart": "198.19.7.64", "rangeEnd": "198.19.7.95"]]])
        // An explicit --ip may lie outside the range: host-local then gets the whole subnet.
        let explicit = CNIConfig.conflist(for: mv, ipamDataDir: "/d", explicitIP: true)
        #expect(explicit["plugins"]?.arrayValue?[0]["ipam"]?["ranges"] == [[["subnet": "198.19.7.0/24", "gateway": "198.19.7.1"]]])
        let args = CNIConfig.runtimeArgs(ip: IPv4Address("198.19.7.200"), ports: [], mac: MACAddress("02:42:c6:13:07:c8"))
        #expect(CNIConfig.pluginConfig(c, index: 0, runtimeArgs: args, prevResult: nil)["runtimeConfig"] == ["ips": ["198.19.7.200"], "mac": "02:42:c6:13:07:c8"])
        // A range reaching the subnet's edges leaves out its network and broadcast addresses.
        let sub = try IPv4Subnet.parse("198.19.7.0/24")
        let (first, last) = sub.allocationBounds(try IPv4Subnet.parseRange("198.19.7.0/25", in: sub))
        #expect("\(first)-\(last)" == "198.19.7.1-198.19.7.127")
        for bad in ["198.19.8.0/28", "198.19.7.0/23", "198.19.7.1/28", "x"] {
            assertThrowsNetworkError(try IPv4Subnet.parseRange(bad, in: sub)) { if case .invalidIPRange = $0 { return true }; return false }
        }
    }

    @Test func macAddress() {
        #expect(MACAddress("02:42:C6:13:00:2A")?.description == "02:42:c6:13:00:2a")
        #expect(MACAddress("02-42-c6-13-00-2a")?.bytes == [0x02, 0x42, 0xc6, 0x13, 0x00, 0x2a])
        for bad in ["01:00:5e:00:00:01", "00:00:00:00:00:00", "02:42:c6:13:00", "02:42:c6:13:00:2g", ""] {
            #expect(MACAddress(bad) == nil, "\(bad)")
            #expect(MACAddress.problem(bad) != nil, "\(bad)")
        }
        #expect(MACAddress.problem("01:00:5e:00:00:01")!.contains("multicast"))
        for _ in 0..<50 {
            let m = MACAddress.random()
            #expect((m.bytes[0] & 0x03) == 0x02, "locally administered unicast: \(m)")
            #expect(MACAddress(m.description) == m)
        }
    }

    @Test func portMappingParse() throws {
        #expect(try PortMapping.parse("8080:80") == PortMapping(hostPort: 8080, containerPort: 80))
        #expect(try PortMapping.parse("53:53/udp") == PortMapping(hostPort: 53, containerPort: 53, protocol: "udp"))
        #expect(try PortMapping.parse("127.0.0.1:9000:90/tcp") == PortMapping(hostPort: 9000, containerPort: 90, hostIP: "127.0.0.1"))
        for bad in ["80", "0:80", "70000:80", "80:80/sctp", "x:80", "1.2.3:80:80"] {
            assertThrowsNetworkError(try PortMapping.parse(bad)) { if case .invalidPort = $0 { return true }; return false }
        }
        let any = PortMapping(hostPort: 80, containerPort: 1)
        #expect(any.clashes(with: PortMapping(hostPort: 80, containerPort: 2, hostIP: "127.0.0.1")))
        #expect(!any.clashes(with: PortMapping(hostPort: 80, containerPort: 2, protocol: "udp")))
        #expect(!(PortMapping(hostPort: 80, containerPort: 1, hostIP: "127.0.0.1")
            .clashes(with: PortMapping(hostPort: 80, containerPort: 1, hostIP: "127.0.0.2"))))
    }
}

@Suite struct CNIResultTests {
    let net = NetworkConfig(name: "web", id: String(repeating: "cd", count: 32), subnet: "198.18.5.0/24",
                            gateway: "198.18.5.1", bridge: "cryo-cdcdcdcdcd", created: "")

    /// As printed by Debian's bridge plugin 1.1.1.
    let sample = """
        {
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "cryo-cdcdcdcdcd", "mac": "9e:65:0f:55:52:7c"},
                {"name": "vethc6437257", "mac": "42:0e:62:70:a9:5c"},
                {"name": "eth0", "mac": "82:50:6e:fc:d0:a1", "sandbox": "/run/cryo/netns/c1"}
            ],
            "ips": [{"interface": 2, "address": "198.18.5.7/24", "gateway": "198.18.5.1"}],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dns": {}
        }
        """

    @Test func parseResult() throws {
        let r = try CNIResult.parse(Array(sample.utf8))
        #expect(r.cniVersion == "1.0.0")
        #expect(r.interfaces?.count == 3)
        #expect(r.routes == [CNIResult.Route(dst: "0.0.0.0/0", gw: nil)])
        #expect(r.dns != nil)
        let a = try CryoNetwork.Attachment.from(result: r, containerID: "c1", network: net, interface: "eth0",
                                    ports: [PortMapping(hostPort: 1, containerPort: 2)])
        #expect(a.ip == "198.18.5.7")
        #expect(a.prefixLength == 24)
        #expect(a.gateway == "198.18.5.1")
        #expect(a.mac == "82:50:6e:fc:d0:a1")
        #expect(a.interface == "eth0")
        #expect(a.hostInterface == "vethc6437257")
        #expect(a.bridge == "cryo-cdcdcdcdcd")
        #expect(a.network == "web")

        let empty = try CNIResult.parse(Array(#"{"cniVersion":"1.0.0","interfaces":[],"ips":[]}"#.utf8))
        assertThrowsNetworkError(try CryoNetwork.Attachment.from(result: empty, containerID: "c1", network: net, interface: "eth0", ports: [])) {
            $0.description.contains("no IPv4 address")
        }
    }

    @Test func parseError() {
        let e = CNIErrorResult.parse(Array(#"{"code": 999, "msg": "failed to allocate for range 0", "details": "more"}"#.utf8))
        #expect(e == CNIErrorResult(code: 999, msg: "failed to allocate for range 0", details: "more"))
        #expect(CNIErrorResult.parse(Array(#"{"code":7,"msg":"x"}"#.utf8))?.details == nil)
        #expect(CNIErrorResult.parse(Array("panic: oops".utf8)) == nil)
        let err = NetworkError.plugin(plugin: "bridge", command: "ADD", code: 999, message: "boom", details: "")
        #expect(err.description == "CNI plugin bridge failed (ADD): boom [code 999]")
    }
}

@Suite struct PortCheckTests {
    @Test func boundPortsAreRefused() throws {
        let tcp = try HeldPort(udp: false)
        defer { tcp.close() }
        for ip in ["", "127.0.0.1"] {
            assertThrowsNetworkError(try PortCheck.ensureFree(PortMapping(hostPort: tcp.port, containerPort: 80, hostIP: ip))) {
                if case .portInUse(let p, "tcp", _, let why) = $0 { return p == tcp.port && why.contains("already in use") }
                return false
            }
        }
        let udp = try HeldPort(udp: true)
        defer { udp.close() }
        assertThrowsNetworkError(try PortCheck.ensureFree(PortMapping(hostPort: udp.port, containerPort: 53, protocol: "udp"))) {
            if case .portInUse(_, "udp", _, _) = $0 { return true }; return false
        }
        // Another protocol on the same number is fine (unless something holds that one too).
        let free = try freePort()
        #expect(throws: Never.self) { try PortCheck.ensureFree(PortMapping(hostPort: free, containerPort: 80)) }
        // An address the host does not have.
        assertThrowsNetworkError(try PortCheck.ensureFree(PortMapping(hostPort: free, containerPort: 80, hostIP: "198.19.255.254"))) {
            $0.description.contains("not an address of this host")
        }
    }
}

@Suite struct ContainerFilesTests {
    /// A peer's aliases (docker-compose's service name) come as more entries with its
    /// address: one hosts line per address, names in order, each once.
    @Test func peersWithAliasesShareOneLine() {
        let hosts = ContainerFiles.hosts(hostname: "abc123", ip: "198.18.1.2", peers: [
            (name: "p_redis_1", ip: "198.18.1.3"), (name: "redis", ip: "198.18.1.3"),
            (name: "p_web_2", ip: "198.18.1.4"), (name: "web", ip: "198.18.1.4"), (name: "web", ip: "198.18.1.4"),
        ], aliases: ["p_web_1", "web"])
        #expect(hosts.hasSuffix("198.18.1.2\tabc123 p_web_1 web\n198.18.1.3\tp_redis_1 redis\n198.18.1.4\tp_web_2 web\n"), "\(hosts)")
    }

    @Test func extraHostsComeBeforeTheContainersOwnLine() throws {
        let hosts = ContainerFiles.hosts(hostname: "h", ip: "198.18.1.2", peers: [],
                                         extraHosts: [(name: "db", ip: "198.51.100.7"), (name: "v6", ip: "2001:db8::1")])
        #expect(hosts.hasSuffix("ff02::2\tip6-allrouters\n198.51.100.7\tdb\n2001:db8::1\tv6\n198.18.1.2\th\n"), "\(hosts)")
        let s = try TempDir(); defer { s.remove() }
        assertThrowsNetworkError(try ContainerFiles.updateHosts(dir: s.path, hostname: "h", ip: nil, peers: [],
                                                                extraHosts: [(name: "db", ip: "1.2.3.4\n5.6.7.8 evil")])) { _ in true }
    }

    @Test func write() throws {
        let s = try TempDir(); defer { s.remove() }
        try FS.atomicWrite(s.at("host-resolv"), Array("""
            # comment
            nameserver 127.0.0.53
            nameserver 198.18.0.53
            nameserver ::1
            search example.test
            options edns0 trust-ad

            """.utf8))
        try ContainerFiles.write(dir: s.at("etc"), hostname: "web1", ip: "198.18.1.2",
                                 peers: [(name: "db", ip: "198.18.1.3"), (name: "cache", ip: "198.18.1.4")],
                                 hostResolvConf: s.at("host-resolv"))
        #expect(try FS.readString(s.at("etc/hostname")) == "web1\n")
        let hosts = try FS.readString(s.at("etc/hosts"))
        #expect(hosts.hasPrefix("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"), "\(hosts)")
        #expect(hosts.hasSuffix("198.18.1.2\tweb1\n198.18.1.3\tdb\n198.18.1.4\tcache\n"), "\(hosts)")
        let resolv = try FS.readString(s.at("etc/resolv.conf"))
        #expect(resolv.contains("nameserver 198.18.0.53\n"), "\(resolv)")
        #expect(!resolv.contains("nameserver 127.0.0.53"), "\(resolv)")
        #expect(!resolv.contains("nameserver ::1"), "\(resolv)")
        #expect(resolv.contains("search example.test\n"), "\(resolv)")
        #expect(resolv.contains("options edns0 trust-ad\n"), "\(resolv)")
        var st = stat()
        stat(s.at("etc/hosts"), &st)
        #expect((st.st_mode & 0o777) == 0o644, "readable by any container user")

        // Rewritten in place: the inode a bind mount shows stays the same.
        let ino = st.st_ino
        try ContainerFiles.updateHosts(dir: s.at("etc"), hostname: "web1", ip: "198.18.1.2", peers: [])
        stat(s.at("etc/hosts"), &st)
        #expect(st.st_ino == ino)
        #expect(try FS.readString(s.at("etc/hosts")).hasSuffix("198.18.1.2\tweb1\n"))

        // Only loopback nameservers on the host: none, with a comment saying why.
        try FS.write(s.at("host-resolv"), "nameserver 127.0.0.53\n")
        try ContainerFiles.write(dir: s.at("etc2"), hostname: "h", ip: nil, hostResolvConf: s.at("host-resolv"))
        let r2 = try FS.readString(s.at("etc2/resolv.conf"))
        #expect(!r2.contains("\nnameserver"), "\(r2)")
        #expect(r2.contains("# Left out (loopback on the host"), "\(r2)")
        #expect(try !FS.readString(s.at("etc2/hosts")).contains("\th\n"), "no address: no own line")

        assertThrowsNetworkError(try ContainerFiles.write(dir: s.at("etc3"), hostname: "bad name\n1.2.3.4 evil", ip: nil)) {
            if case .invalidName = $0 { return true }; return false
        }
    }
}

/// The runner's ADD/DEL sequencing against fake plugins (shell scripts) that log each call.
@Suite struct CNISequencingTests {
    func makeFakePlugins(_ s: TempDir, failADD: String?) throws -> String {
        let dir = s.at("plugins")
        try FS.mkdirAll(dir)
        for name in ["fakebridge", "fakeportmap"] {
            let fail = name == failADD
            let script = """
                #!/bin/sh
                cfg=$(cat)
                echo "$CNI_COMMAND \(name) $CNI_CONTAINERID $CNI_IFNAME netns=$CNI_NETNS" >> \(s.at("calls.log"))
                echo "$cfg" >> \(s.at("stdin-\(name).log"))
                if [ "$CNI_COMMAND" = ADD ] && \(fail ? "true" : "false"); then
                  echo '{"cniVersion":"1.0.0","code":11,"msg":"\(name) says no","details":"on purpose"}'
                  exit 1
                fi
                if [ "$CNI_COMMAND" = ADD ]; then
                  echo '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"interface":0,"address":"198.18.9.2/24"}]}'
                fi
                exit 0

                """
            try FS.atomicWrite(dir + "/" + name, Array(script.utf8), mode: 0o755)
        }
        return dir
    }

    func record(_ runner: CNIRunner) -> AttachmentRecord {
        let conflist: JSONValue = [
            "cniVersion": "1.0.0", "name": "fake",
            "plugins": [["type": "fakebridge"], ["type": "fakeportmap", "capabilities": ["portMappings": true]]],
        ]
        return AttachmentRecord(containerID: "c1", networkID: "n", networkName: "fake", netnsPath: "/nonexistent/ns",
                                interface: "eth0", conflist: conflist,
                                runtimeArgs: CNIConfig.runtimeArgs(ip: nil, ports: [PortMapping(hostPort: 1, containerPort: 2)]),
                                ports: [], result: nil, attachment: nil)
    }

    @Test func addChainsAndDelReverses() throws {
        let s = try TempDir(); defer { s.remove() }
        let runner = try CNIRunner(root: s.at("root"), pluginDirs: [try makeFakePlugins(s, failADD: nil)])
        var r = record(runner)
        let result = try runner.runADD(r)
        #expect(result["ips"]?.arrayValue?.first?["address"] == "198.18.9.2/24")
        r.result = result
        try runner.runDEL(r)
        let calls = try FS.readString(s.at("calls.log")).split(separator: "\n")
        #expect(calls == [
            "ADD fakebridge c1 eth0 netns=/nonexistent/ns", "ADD fakeportmap c1 eth0 netns=/nonexistent/ns",
            // The namespace is gone: DEL gets an empty CNI_NETNS (the plugins then only release).
            "DEL fakeportmap c1 eth0 netns=", "DEL fakebridge c1 eth0 netns=",
        ])
        let pmIn = try FS.readString(s.at("stdin-fakeportmap.log")).split(separator: "\n")
        let addCfg = try JSONValue.decode(Array(pmIn[0].utf8))
        #expect(addCfg["prevResult"]?["ips"]?.arrayValue?.first?["address"] == "198.18.9.2/24", "prevResult chained")
        #expect(addCfg["runtimeConfig"]?["portMappings"]?.arrayValue?.count == 1)
        #expect(addCfg["name"] == "fake")
        let brIn = try FS.readString(s.at("stdin-fakebridge.log")).split(separator: "\n")
        #expect(try JSONValue.decode(Array(brIn[0].utf8))["runtimeConfig"] == nil, "no capability, no runtimeConfig")
        #expect(try JSONValue.decode(Array(brIn[1].utf8))["prevResult"] != nil, "DEL gets the cached result")
    }

    @Test func failingPluginErrorNamesPlugin() throws {
        let s = try TempDir(); defer { s.remove() }
        let runner = try CNIRunner(root: s.at("root"), pluginDirs: [try makeFakePlugins(s, failADD: "fakeportmap")])
        assertThrowsNetworkError(try runner.runADD(record(runner))) {
            $0 == .plugin(plugin: "fakeportmap", command: "ADD", code: 11, message: "fakeportmap says no", details: "on purpose")
        }
        assertThrowsNetworkError(try runner.invoke(type: "nosuchplugin", command: "ADD", containerID: "c", netns: "", interface: "eth0", config: [:])) {
            $0 == .pluginMissing("nosuchplugin")
        }
    }
}
