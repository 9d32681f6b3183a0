import CryoLinux
import Foundation
import Glibc
import CryoTestSupport
import Testing
@testable import CryoNetwork

/// The real plugins (Debian's containernetworking-plugins in /usr/lib/cni) against network
/// namespaces made by `NetworkNamespace.create`, on a bridge and subnet unique to the test
/// (198.19.x.0/24). Needs root; fails without it. Everything is undone when a test ends,
/// whether it passed or not.
@Suite(.serialized) struct CNIIntegrationTests {
    nonisolated(unsafe) static var counter = 0

    final class Env {
        let scratch: TempDir
        let store: NetworkStore
        var runner: CNIRunner
        let network: NetworkConfig
        let subnet: IPv4Subnet
        var netns: [String: String] = [:]   // container id → namespace file
        var listeners: [SpawnedProcess] = []
        let tag: String

        init() throws {
            CNIIntegrationTests.counter += 1
            let n = CNIIntegrationTests.counter
            let pid = Int(getpid())
            tag = "cn\(pid % 100000)x\(n)"
            scratch = try TempDir("cryo-net-it")
            store = try NetworkStore(root: scratch.at("root"))
            runner = try CNIRunner(root: scratch.at("root"))
            let third = 16 + (pid % 30) * 8 + (n % 8)
            network = try store.create(name: "it-\(tag)", subnet: "198.19.\(third).0/24", bridge: "cryt\(pid % 100000)x\(n)")
            subnet = try network.parsedSubnet
        }

        /// A fresh network namespace for a container id.
        func namespace(_ id: String) throws -> String {
            let path = scratch.at("netns/" + id)
            try NetworkNamespace.create(at: path)
            netns[id] = path
            return path
        }

        func containerID(_ short: String) -> String { "\(tag)-\(short)" }

        func attach(_ id: String, ip: String? = nil, ports: [PortMapping] = []) throws -> CryoNetwork.Attachment {
            try runner.attach(containerID: id, netnsPath: netns[id]!, network: network, ip: ip, ports: ports)
        }

        func detach(_ id: String) throws {
            try runner.detach(containerID: id, netnsPath: netns[id] ?? scratch.at("netns/" + id), network: network)
        }

        /// Addresses host-local holds for this network, with their owners.
        func allocations() -> [IPv4Address: String] {
            CNIRunner.allocationOwners(in: runner.paths.ipamDir(network: network.name))
        }

        func links(in id: String) throws -> [String] {
            let out = try inNetns(netns[id]!, ["ip", "-o", "link", "show"]).stdoutString
            return out.split(separator: "\n").compactMap { line in
                line.split(separator: ":").dropFirst().first.map { $0.trimmingCharacters(in: .whitespaces).split(separator: "@").first.map(String.init) ?? "" }
            }
        }

        func bridgePorts() -> [String] { (try? FS.listDirectory("/sys/class/net/\(network.bridge)/brif")) ?? [] }

        func ping(from id: String, _ ip: String) throws -> Bool {
            try inNetns(netns[id]!, ["busybox", "ping", "-c", "1", "-W", "2", ip]).status == 0
        }

        func natRules() throws -> String { try sh(["iptables-save", "-t", "nat"]).stdoutString }

        func cleanup() {
            for l in listeners {
                _ = cryo_kill_pidfd(l)
                _ = try? Spawn.wait(pid: l.pid)
                close(l.pidfd)
            }
            for id in netns.keys.sorted() { try? detach(id) }
            for id in netns.keys.sorted() { NetworkNamespace.remove(at: netns[id]!) }
            try? runner.deleteBridge(of: network)
            scratch.remove()
        }
    }

    func withEnv(_ body: (Env) throws -> Void) throws {
        try requireRoot("network namespaces, bridges, iptables")
        let env = try Env()
        defer { env.cleanup() }
        try body(env)
    }

    // MARK: -

    @Test func twoContainersReachEachOtherAndTheGateway() throws {
        try withEnv { env in
            let a = env.containerID("a"), b = env.containerID("b")
            _ = try env.namespace(a)
            _ = try env.namespace(b)
            let atA = try env.attach(a)
            let atB = try env.attach(b)
            #expect(atA.ip != atB.ip)
            for at in [atA, atB] {
                #expect(env.subnet.isHost(IPv4Address(at.ip)!), "\(at.ip)")
                #expect(at.gateway == env.network.gateway)
                #expect(at.prefixLength == 24)
                #expect(at.interface == "eth0")
                #expect(at.mac.count == 17)
                #expect(interfaceExists(at.hostInterface), "veth \(at.hostInterface) on the host")
            }
            #expect(Set(env.bridgePorts()) == Set([atA.hostInterface, atB.hostInterface]))
            #expect(try env.links(in: a).contains("eth0"))
            let route = try inNetns(env.netns[a]!, ["ip", "route"]).stdoutString
            #expect(route.contains("default via \(env.network.gateway)"), "\(route)")

            #expect(try env.ping(from: a, atB.ip), "a → b")
            #expect(try env.ping(from: b, atA.ip), "b → a")
            #expect(try env.ping(from: a, env.network.gateway), "a → gateway")
            #expect(try env.runner.attachment(containerID: a, network: env.network) == atA)
            #expect(Set(try env.runner.attachments().map(\.containerID)) == [a, b])
            #expect(env.allocations()[IPv4Address(atA.ip)!] == a)

            try env.detach(a)
            #expect(!interfaceExists(atA.hostInterface), "veth gone")
            #expect(try !env.links(in: a).contains("eth0"))
            #expect(env.allocations()[IPv4Address(atA.ip)!] == nil, "address released")
            #expect(!FS.exists(env.runner.paths.ipamDir(network: env.network.name) + "/" + atA.ip))
            #expect(try env.runner.attachment(containerID: a, network: env.network) == nil)
            try env.detach(a)   // DEL twice succeeds
            #expect(try env.ping(from: b, env.network.gateway), "b unaffected")
        }
    }

    @Test func fixedIPAndRefusals() throws {
        try withEnv { env in
            let a = env.containerID("a"), b = env.containerID("b")
            _ = try env.namespace(a)
            _ = try env.namespace(b)
            let base = env.subnet.network.value
            let fixed = IPv4Address(base + 50).description
            #expect(try env.attach(a, ip: fixed).ip == fixed)

            func assertNothingFor(_ id: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
                #expect(!env.allocations().values.contains(id), "no address for \(id)", sourceLocation: sourceLocation)
                #expect(try env.links(in: id) == ["lo"], "no interface in \(id)'s namespace", sourceLocation: sourceLocation)
                #expect(try env.runner.attachment(containerID: id, network: env.network) == nil, sourceLocation: sourceLocation)
                #expect(env.bridgePorts().count == 1, "only a's veth on the bridge", sourceLocation: sourceLocation)
            }
            assertThrowsNetworkError(try env.attach(b, ip: fixed)) { $0 == .ipInUse(ip: fixed, network: env.network.name, container: a) }
            try assertNothingFor(b)
            assertThrowsNetworkError(try env.attach(b, ip: "198.18.255.9")) { if case .ipOutsideSubnet = $0 { return true }; return false }
            assertThrowsNetworkError(try env.attach(b, ip: env.network.gateway)) { $0.description.contains("gateway") }
            assertThrowsNetworkError(try env.attach(b, ip: env.subnet.broadcast.description)) { $0.description.contains("broadcast") }
            assertThrowsNetworkError(try env.attach(b, ip: "198.19.1")) { if case .invalidIP = $0 { return true }; return false }
            try assertNothingFor(b)
            let other = IPv4Address(base + 51).description
            #expect(try env.attach(b, ip: other).ip == other)
            #expect(try env.ping(from: b, fixed))
        }
    }

    /// A migration's target: the address is reserved for the container-to-be, which then gets
    /// it with the MAC it had on the source; nobody else gets it, automatically or by --ip.
    @Test func reservedAddressGoesToItsOwnerWithItsMAC() throws {
        try withEnv { env in
            let a = env.containerID("a"), b = env.containerID("b"), c = env.containerID("c")
            for id in [a, b, c] { _ = try env.namespace(id) }
            let reserved = IPv4Address(env.subnet.network.value + 2).description   // host-local's first pick
            try env.runner.reserve(network: env.network, ip: reserved, owner: a)
            #expect(try env.attach(b).ip != reserved, "automatic allocation skips a reservation")
            assertThrowsNetworkError(try env.attach(c, ip: reserved)) { $0 == .ipInUse(ip: reserved, network: env.network.name, container: a) }
            let mac = MACAddress("02:42:c6:13:99:01")!
            let at = try env.runner.attach(containerID: a, netnsPath: env.netns[a]!, network: env.network, ip: reserved, mac: mac)
            #expect(at.ip == reserved)
            #expect(at.mac == mac.description)
            let link = try inNetns(env.netns[a]!, ["ip", "link", "show", "eth0"]).stdoutString
            #expect(link.contains(mac.description), "\(link)")
            #expect(env.allocations()[IPv4Address(reserved)!] == a)
            assertThrowsNetworkError(try env.runner.release(network: env.network, ip: reserved)) { if case .ipInUse = $0 { return true }; return false }
            try env.detach(a)
            #expect(env.allocations()[IPv4Address(reserved)!] == nil, "the detach frees it like any address")
        }
    }

    @Test func publishedPortReachesListenerInNamespace() throws {
        try withEnv { env in
            let a = env.containerID("a"), b = env.containerID("b")
            let nsA = try env.namespace(a)
            _ = try env.namespace(b)
            let port = try freePort()
            let at = try env.attach(a, ports: [PortMapping(hostPort: port, containerPort: 80)])
            #expect(at.ports == [PortMapping(hostPort: port, containerPort: 80)])
            let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
            defer { close(devnull) }
            let listener = try Spawn.spawn(path: "/usr/bin/nsenter",
                                           args: ["nsenter", "--net=" + nsA, "busybox", "nc", "-l", "-p", "80", "-e", "echo", "hello-from-\(a)"],
                                           env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], fds: [devnull, devnull, devnull])
            env.listeners.append(listener)
            #expect(tcpFetch(port: port) == "hello-from-\(a)\n", "127.0.0.1:\(port) → \(at.ip):80")
            #expect(try env.natRules().contains("id: \\\"\(a)\\\""), "portmap's DNAT chain exists")

            // The same host port again (another cryo container), and a port a host process holds.
            assertThrowsNetworkError(try env.attach(b, ports: [PortMapping(hostPort: port, containerPort: 81)])) {
                if case .portInUse(port, "tcp", _, let why) = $0 { return why.contains(a) }; return false
            }
            let held = try HeldPort(udp: false, address: "127.0.0.1")
            defer { held.close() }
            assertThrowsNetworkError(try env.attach(b, ports: [PortMapping(hostPort: held.port, containerPort: 80)])) {
                if case .portInUse(held.port, "tcp", _, let why) = $0 { return why.contains("already in use") }; return false
            }
            let heldUDP = try HeldPort(udp: true)
            defer { heldUDP.close() }
            assertThrowsNetworkError(try env.attach(b, ports: [PortMapping(hostPort: heldUDP.port, containerPort: 53, protocol: "udp")])) {
                if case .portInUse(_, "udp", _, _) = $0 { return true }; return false
            }
            #expect(!env.allocations().values.contains(b))
            #expect(try env.links(in: b) == ["lo"])

            try env.detach(a)
            #expect(try !env.natRules().contains("id: \\\"\(a)\\\""), "portmap's rules removed by DEL")
            try env.detach(a)
        }
    }

    @Test func failedAddLeavesNothingBehind() throws {
        try withEnv { env in
            // Real bridge and host-local, a portmap that refuses ADD.
            let plugins = env.scratch.at("plugins")
            try FS.mkdirAll(plugins)
            for p in ["bridge", "host-local"] { #expect(symlink("/usr/lib/cni/" + p, plugins + "/" + p) == 0) }
            let fake = """
                #!/bin/sh
                cat >/dev/null
                echo "$CNI_COMMAND" >> \(env.scratch.at("portmap.log"))
                if [ "$CNI_COMMAND" = ADD ]; then echo '{"code":100,"msg":"no iptables today"}'; exit 1; fi
                exit 0

                """
            try FS.atomicWrite(plugins + "/portmap", Array(fake.utf8), mode: 0o755)
            env.runner = try CNIRunner(root: env.scratch.at("root"), pluginDirs: [plugins])
            let a = env.containerID("a")
            _ = try env.namespace(a)
            assertThrowsNetworkError(try env.attach(a)) {
                $0 == .plugin(plugin: "portmap", command: "ADD", code: 100, message: "no iptables today", details: "")
            }
            #expect(try FS.readString(env.scratch.at("portmap.log")) == "ADD\nDEL\n", "DEL after the failed ADD")
            #expect(try env.links(in: a) == ["lo"], "veth removed")
            #expect(env.bridgePorts() == [], "nothing on the bridge")
            #expect(env.allocations().isEmpty, "address released")
            #expect(try env.runner.attachment(containerID: a, network: env.network) == nil)
            #expect(try FS.listDirectory(env.runner.paths.attachmentsDir) == [])
        }
    }

    /// A reboot: the namespace is gone without a detach. DEL still succeeds (and frees the
    /// address); and an attach of the same container with its old address (what a restore with
    /// established TCP connections needs) works even when the stale attachment was never deleted.
    @Test func reattachSameAddressAfterNamespaceLoss() throws {
        try withEnv { env in
            let a = env.containerID("a")
            var ns = try env.namespace(a)
            let first = try env.attach(a)
            NetworkNamespace.remove(at: ns)
            // The kernel tears a namespace down asynchronously (cleanup_net on a workqueue).
            #expect(waitUntil { !interfaceExists(first.hostInterface) }, "the veth died with the namespace")
            #expect(env.allocations()[IPv4Address(first.ip)!] == a, "host-local still holds it")

            ns = try env.namespace(a)
            let again = try env.attach(a, ip: first.ip)   // stale attachment undone first
            #expect(again.ip == first.ip)
            #expect(try env.ping(from: a, env.network.gateway))

            NetworkNamespace.remove(at: ns)
            try env.detach(a)
            #expect(env.allocations().isEmpty)
            try env.detach(a)
        }
    }

    @Test func networkRemovalWaitsForEndpoints() throws {
        try withEnv { env in
            let a = env.containerID("a")
            _ = try env.namespace(a)
            _ = try env.attach(a)
            #expect(interfaceExists(env.network.bridge))
            assertThrowsNetworkError(try env.store.remove(env.network.name)) {
                $0 == .activeEndpoints(network: env.network.name, containers: [a])
            }
            try env.detach(a)
            try env.store.remove(env.network.name)
            try env.runner.deleteBridge(of: env.network)
            #expect(!interfaceExists(env.network.bridge))
            assertThrowsNetworkError(try env.attach(a)) { $0 == .notFound(env.network.name) }
            #expect(try env.links(in: a) == ["lo"])
        }
    }
}

func cryo_kill_pidfd(_ p: SpawnedProcess) -> Int32 { kill(p.pid, SIGKILL) }

func waitUntil(timeoutMs: Int = 5000, _ cond: () -> Bool) -> Bool {
    for _ in 0..<(timeoutMs / 20) {
        if cond() { return true }
        usleep(20_000)
    }
    return cond()
}
