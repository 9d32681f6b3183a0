import CryoLinux
import CryoNetwork
import FoundationEssentials
import Glibc

extension Engine {
    // MARK: errors

    /// CryoNetwork's refusals as API errors: conflicts 409, bad input 400, unknown 404,
    /// plugin failures 500 with the plugin's message.
    nonisolated static func apiError(_ e: Error) -> Error {
        guard let n = e as? NetworkError else { return e }
        switch n {
        case .notFound: return EngineError(.notFound, n.description)
        case .nameInUse, .subnetOverlap, .bridgeInUse, .predefined, .activeEndpoints, .ipInUse, .portInUse, .ambiguous, .noFreeSubnet:
            return EngineError.conflict(n.description)
        case .invalidName, .invalidSubnet, .invalidGateway, .invalidBridge, .invalidIP, .ipOutsideSubnet, .ipNotAssignable, .invalidPort:
            return EngineError.bad(n.description)
        case .plugin, .pluginOutput, .pluginMissing, .corruptState:
            return EngineError.internalError(n.description)
        }
    }

    // MARK: networks

    /// A network by name, id or id prefix; Docker's "bridge" (and "default") mean cryo0.
    public nonisolated func network(_ ref: String) throws -> NetworkConfig {
        let name = (ref == "bridge" || ref == "default") ? NetworkDefaults.defaultName : ref
        do { return try networks.inspect(name) } catch { throw Self.apiError(error) }
    }

    public nonisolated func listNetworks() throws -> [NetworkConfig] {
        do { return try networks.list() } catch { throw Self.apiError(error) }
    }

    public func createNetwork(name: String, driver: String?, subnet: String?, gateway: String?, internal: Bool,
                              labels: [String: String]) async throws -> NetworkConfig {
        if let d = driver, !d.isEmpty, d != "bridge" {
            throw EngineError.bad("network driver \(d) is not supported: cryo networks are bridges")
        }
        if name == "bridge" || name == "host" || name == "none" || name == "default" {
            throw EngineError.conflict("network name \(name) is reserved (a pre-defined network mode)")
        }
        let store = networks
        do {
            return try await blocking {
                try store.create(name: name, subnet: subnet, gateway: gateway, internal: `internal`, labels: labels)
            }
        } catch { throw Self.apiError(error) }
    }

    /// Removes a network and its bridge. Refused for cryo0 and while containers are attached.
    public func removeNetwork(_ ref: String) async throws {
        let net = try network(ref)
        let store = networks, cni = cni
        do {
            try await blocking {
                try store.remove(net.id)
                try cni.deleteBridge(of: net)
            }
        } catch { throw Self.apiError(error) }
    }

    /// Running containers attached to a network (for `network inspect`).
    public func endpoints(network id: String) -> [StoredContainer] {
        containers.values.filter { $0.endpoint?.networkID == id }.sorted { $0.name < $1.name }
    }

    // MARK: containers

    /// HostConfig.NetworkMode → the network to attach at start (nil: none or host).
    nonisolated func networkFor(mode: String?) throws -> NetworkConfig? {
        let m = mode ?? ""
        switch m {
        case "", "default", "bridge": return try network(NetworkDefaults.defaultName)
        case "none", "host": return nil
        default:
            if m.hasPrefix("container:") {
                throw EngineError.bad("network mode \(m) is not supported by cryo")
            }
            // Not 404: the docker CLI takes any 404 from create for a missing image and
            // tries to pull it, hiding this message.
            do { return try network(m) } catch let e as EngineError where e.kind == .notFound {
                throw EngineError.bad(e.message)
            }
        }
    }

    /// `-p` as docker sends it ({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}); an empty
    /// or "0" HostPort means "any free port" (host port 0, chosen at attach). With
    /// `publishAll` (`-P`) every port of `exposed` that has no binding gets a free one too.
    public nonisolated static func portMappings(_ bindings: [String: [PortBinding]?]?, publishAll: Bool = false,
                                         exposed: [String] = []) throws -> [PortMapping] {
        var out: [PortMapping] = []
        var bound = Set<String>()
        for (key, list) in (bindings ?? [:]).sorted(by: { $0.key < $1.key }) {
            let (cport, proto) = try containerPort(key)
            bound.insert("\(cport)/\(proto)")
            for b in list ?? [] {
                let hp = b.HostPort ?? ""
                guard let hport = hp.isEmpty ? 0 : Int(hp) else {
                    throw EngineError.bad("invalid host port \"\(hp)\" for \(key): want a number (port ranges are not supported by cryo)")
                }
                let m = PortMapping(hostPort: hport, containerPort: cport, protocol: proto, hostIP: b.HostIp ?? "")
                do { try m.validate() } catch { throw apiError(error) }
                out.append(m)
            }
        }
        if publishAll {
            for key in exposed.sorted() {
                let (cport, proto) = try containerPort(key)
                if bound.insert("\(cport)/\(proto)").inserted {
                    out.append(PortMapping(hostPort: 0, containerPort: cport, protocol: proto))
                }
            }
        }
        return out
    }

    /// "80/tcp", "53/udp" or "80" → (80, "tcp").
    nonisolated static func containerPort(_ key: String) throws -> (Int, String) {
        let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
        guard let cport = parts.first.flatMap({ Int($0) }), (1...65535).contains(cport) else {
            throw EngineError.bad("invalid port \(key): want PORT[/tcp|udp] (port ranges are not supported by cryo)")
        }
        let proto = parts.count > 1 ? parts[1].lowercased() : "tcp"
        guard proto == "tcp" || proto == "udp" else {
            throw EngineError.bad("invalid port \(key): protocol \"\(proto)\" is not tcp or udp")
        }
        return (cport, proto)
    }

    /// `--ip`: the IPv4Address of the endpoint for `network` (or of the only endpoint given).
    nonisolated static func requestedIP(_ nc: NetworkingConfig?, mode: String?, network: NetworkConfig?) -> String? {
        guard let eps = nc?.EndpointsConfig, !eps.isEmpty else { return nil }
        let keys = [mode ?? "", network?.name ?? "", network?.id ?? ""].filter { !$0.isEmpty }
        let chosen = keys.lazy.compactMap { eps[$0] ?? nil }.first ?? (eps.count == 1 ? eps.first!.value : nil)
        guard let ip = chosen?.IPAMConfig?.IPv4Address, !ip.isEmpty else { return nil }
        return ip
    }

    /// Starts (or joins) the teardown of a container's network: detach from its network if
    /// attached (address, veth and port rules released), remove the namespace file, rewrite
    /// the peers' /etc/hosts.
    @discardableResult
    func beginNetworkTeardown(_ id: String) -> Task<Void, Never> {
        let previous = teardowns[id]?.task
        let c = containers[id]
        let cni = cni, netns = paths.netns(id)
        let net = c?.networkID.flatMap { try? networks.inspect($0) }
        let recorded = net.map { FS.exists(cni.paths.attachmentFile(containerID: id, networkID: $0.id)) } ?? false
        let detach = net != nil && (recorded || c?.endpoint != nil)
        if c?.endpoint != nil { update(id) { $0.endpoint = nil } }
        nextTeardownToken += 1
        let token = nextTeardownToken
        let task = Task {
            await previous?.value
            let failure: String? = try? await self.blocking { () -> String? in
                var failure: String?
                if detach, let net {
                    do { try cni.detach(containerID: id, netnsPath: netns, network: net) } catch { failure = "\(error)" }
                }
                NetworkNamespace.remove(at: netns)
                return failure
            }
            await self.networkReleased(id, token: token, networkID: detach ? net?.id : nil, failure: failure ?? nil)
        }
        teardowns[id] = (token, task)
        return task
    }

    func networkReleased(_ id: String, token: Int, networkID: String?, failure: String?) async {
        if teardowns[id]?.token == token { teardowns[id] = nil }
        if let failure {
            FileHandleStderr.write("cryod: detaching container \(id.prefix(12)) from its network: \(failure)\n")
        }
        if let networkID { await refreshPeers(networkID: networkID, except: id) }
    }

    /// Waits until no network teardown of the container is running.
    func awaitTeardown(_ id: String) async {
        while let t = teardowns[id] { await t.task.value; if teardowns[id]?.token == t.token { teardowns[id] = nil } }
    }

    /// Other running containers on a user-defined network, by name (cryo0, like Docker's
    /// default bridge, has no name resolution between containers).
    func peers(of id: String, networkID: String) -> [(name: String, ip: String)] {
        guard let net = try? networks.inspect(networkID), net.name != NetworkDefaults.defaultName else { return [] }
        return containers.values
            .filter { $0.id != id && $0.endpoint?.networkID == networkID }
            .sorted { $0.name < $1.name }
            .compactMap { c in c.endpoint.map { (c.name, $0.ip) } }
    }

    func etcDir(_ id: String) -> String { paths.containerDir(id) }

    /// Writes the container's hostname, hosts and resolv.conf (bind-mounted into it).
    func writeEtcFiles(_ id: String) async throws {
        guard let c = containers[id] else { return }
        let hostname = c.config.Hostname.flatMap { $0.isEmpty ? nil : $0 } ?? String(id.prefix(12))
        let aliases = c.name == hostname ? [] : [c.name]
        let ip = c.endpoint?.ip
        let peers = c.endpoint.map { self.peers(of: id, networkID: $0.networkID) } ?? []
        let dir = etcDir(id)
        try await blocking { try ContainerFiles.write(dir: dir, hostname: hostname, ip: ip, peers: peers, aliases: aliases) }
    }

    /// Rewrites /etc/hosts of every running container on the network (a peer came or went).
    func refreshPeers(networkID: String, except: String?) async {
        var jobs: [(dir: String, hostname: String, ip: String, aliases: [String], peers: [(name: String, ip: String)])] = []
        for c in containers.values where c.id != except {
            guard let e = c.endpoint, e.networkID == networkID else { continue }
            let hostname = c.config.Hostname.flatMap { $0.isEmpty ? nil : $0 } ?? String(c.id.prefix(12))
            jobs.append((etcDir(c.id), hostname, e.ip, c.name == hostname ? [] : [c.name], peers(of: c.id, networkID: networkID)))
        }
        if jobs.isEmpty { return }
        let work = jobs
        try? await blocking {
            for j in work {
                try? ContainerFiles.updateHosts(dir: j.dir, hostname: j.hostname, ip: j.ip, peers: j.peers, aliases: j.aliases)
            }
        }
    }

    /// At start or restore, after the namespace exists: attach to the container's network
    /// (`ip`: the restore's recorded address, else `--ip`), then write its /etc files and
    /// tell the peers. A failed attach leaves nothing behind (CNIRunner undoes it).
    func attachNetwork(_ id: String, restoreIP: String?, restorePorts: [PortMapping]? = nil) async throws {
        guard let c = containers[id] else { return }
        if c.hostConfig.NetworkMode == "host" { return }
        if let netID = c.networkID {
            let net: NetworkConfig
            do { net = try networks.inspect(netID) } catch {
                throw EngineError(.notFound, "network \(c.networkName ?? netID) not found")
            }
            let cni = cni, netns = paths.netns(id)
            let ip = restoreIP ?? c.requestedIP
            let ports = restorePorts ?? c.portMappings ?? []
            let att: Attachment
            do {
                att = try await blocking { try cni.attach(containerID: id, netnsPath: netns, network: net, ip: ip, ports: ports) }
            } catch {
                let e = Self.apiError(error)
                if let ee = e as? EngineError { throw EngineError(ee.kind, "container \(c.name) on network \(net.name): \(ee.message)") }
                throw e
            }
            update(id) { s in
                s.endpoint = att
                s.lastIP = att.ip
            }
        }
        try await writeEtcFiles(id)
        if let netID = c.networkID { await refreshPeers(networkID: netID, except: id) }
    }

    /// Before a restore: the checkpoint's address must still be free on its network.
    /// Returns what the checkpoint recorded (nil: it had no network).
    func checkRestoreAddress(_ c: StoredContainer, recorded: CheckpointNetwork?) throws -> CheckpointNetwork? {
        guard let rec = recorded else { return nil }
        guard c.networkID == rec.networkID, (try? networks.inspect(rec.networkID)) != nil else {
            throw EngineError.conflict("cannot restore container \(c.name): it was checkpointed on network \(rec.network) with address \(rec.ip), and that network is gone or no longer the container's")
        }
        let holders = (try? cni.attachments()) ?? []
        if let other = holders.first(where: { $0.networkID == rec.networkID && $0.ip == rec.ip && $0.containerID != c.id }) {
            let who = containers[other.containerID]?.name ?? other.containerID
            throw EngineError.conflict("cannot restore container \(c.name): its address \(rec.ip) on network \(rec.network) is taken by container \(who); the checkpoint needs the same address")
        }
        return rec
    }
}

enum FileHandleStderr {
    static func write(_ s: String) {
        let b = Array(s.utf8)
        _ = b.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
