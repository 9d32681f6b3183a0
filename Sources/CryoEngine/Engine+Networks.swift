import CryoLinux
import CryoNetwork
import FoundationEssentials
import Glibc

extension Engine {
    // MARK: errors

    /// CryoNetwork's refusals as failures with their codes (`NetworkError.code`).
    nonisolated static func apiError(_ e: Error) -> Error {
        guard let n = e as? NetworkError else { return e }
        return CryoFailure(n.code, n.description)
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

    /// `network create`: driver "bridge" (default) or "macvlan" with its Docker options
    /// (`parent`, `macvlan_mode`; a bridge takes `com.docker.network.bridge.name`). Any other
    /// driver or option is refused, never ignored.
    public func createNetwork(name: String, driver: String?, subnet: String?, gateway: String?, ipRange: String? = nil,
                              options: [String: String] = [:], internal: Bool,
                              labels: [String: String]) async throws -> NetworkConfig {
        let d = (driver ?? "").isEmpty ? NetworkDriver.bridge : driver!
        let known: Set<String>
        switch d {
        case NetworkDriver.bridge: known = ["com.docker.network.bridge.name"]
        case NetworkDriver.macvlan: known = ["parent", "macvlan_mode"]
        case "ipvlan": throw EngineError.bad("network driver ipvlan is not supported by cryo (this kernel has no ipvlan); use macvlan")
        default: throw EngineError.bad("network driver \(d) is not supported by cryo: use bridge or macvlan")
        }
        if let unknown = options.keys.sorted().first(where: { !known.contains($0) }) {
            throw EngineError.bad("network driver \(d) does not support option \(unknown) (supported: \(known.sorted().joined(separator: ", ")))")
        }
        if name == "bridge" || name == "host" || name == "none" || name == "default" {
            throw EngineError.conflict("network name \(name) is reserved (a pre-defined network mode)")
        }
        if ipRange != nil && subnet == nil {
            throw EngineError.bad("every ip-range or gateway must have a corresponding subnet")
        }
        let store = networks
        do {
            let n = try await blocking {
                try store.create(name: name, driver: d, subnet: subnet, gateway: gateway, ipRange: ipRange,
                                 bridge: options["com.docker.network.bridge.name"], parent: options["parent"],
                                 macvlanMode: options["macvlan_mode"], internal: `internal`, labels: labels,
                                 options: options)
            }
            events.emit("network", "create", id: n.id, attributes: ["name": n.name, "type": n.driver])
            return n
        } catch { throw Self.apiError(error) }
    }

    // MARK: addresses across hosts

    /// Marks `ip` used on `network` in this host's IPAM for the container `owner` (its id) that
    /// is about to be attached with it, e.g. one migrating here: no automatic allocation gets
    /// it, and only `owner` may be attached with it. Refused (409) if another container or
    /// reservation holds it, 400 for an address the network cannot give.
    public func reserveAddress(network ref: String, ip: String, owner: String) async throws {
        let net = try await blocking { try self.network(ref) }
        let cni = cni
        do { try await blocking { try cni.reserve(network: net, ip: ip, owner: owner) } } catch { throw Self.apiError(error) }
    }

    /// Drops a reservation of `reserveAddress` (the migration did not happen). Refused (409)
    /// while a container is attached with the address.
    public func releaseAddress(network ref: String, ip: String) async throws {
        let net = try await blocking { try self.network(ref) }
        let cni = cni
        do { try await blocking { try cni.release(network: net, ip: ip) } } catch { throw Self.apiError(error) }
    }

    /// Removes a network and its bridge. Refused for cryo0 and while containers are attached.
    public func removeNetwork(_ ref: String) async throws {
        let net = try await blocking { try self.network(ref) }
        let store = networks, cni = cni
        do {
            try await blocking {
                try store.remove(net.id)
                try cni.deleteBridge(of: net)
            }
            events.emit("network", "destroy", id: net.id, attributes: ["name": net.name, "type": net.driver])
        } catch { throw Self.apiError(error) }
    }

    /// Running containers attached to a network (for `network inspect`).
    public func endpoints(network id: String) -> [StoredContainer] {
        allRecords.filter { $0.endpoint?.networkID == id }.sorted { $0.name < $1.name }
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
            do { return try network(m) } catch let e as EngineError where e.code == .notFound {
                throw EngineError.bad(e.description)
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

    /// The endpoint settings given for `network` (or the only ones given).
    nonisolated static func chosenEndpoint(_ nc: NetworkingConfig?, mode: String?, network: NetworkConfig?) -> NetworkingConfig.EndpointSettings? {
        guard let eps = nc?.EndpointsConfig, !eps.isEmpty else { return nil }
        let keys = [mode ?? "", network?.name ?? "", network?.id ?? ""].filter { !$0.isEmpty }
        return keys.lazy.compactMap { eps[$0] ?? nil }.first ?? (eps.count == 1 ? eps.first!.value : nil)
    }

    /// `--ip`: the IPv4Address of the endpoint for `network` (or of the only endpoint given).
    nonisolated static func requestedIP(_ nc: NetworkingConfig?, mode: String?, network: NetworkConfig?) -> String? {
        guard let ip = chosenEndpoint(nc, mode: mode, network: network)?.IPAMConfig?.IPv4Address, !ip.isEmpty else { return nil }
        return ip
    }

    /// `--mac-address`: the endpoint's MacAddress (API ≥ 1.44), else Config.MacAddress.
    /// Refuses an address no interface can have (400).
    nonisolated static func requestedMAC(_ nc: NetworkingConfig?, config: ContainerConfig, mode: String?,
                                         network: NetworkConfig?) throws -> String? {
        let keys = [mode ?? "", network?.name ?? "", network?.id ?? ""].filter { !$0.isEmpty }
        let eps = nc?.EndpointsConfig ?? [:]
        let chosen = keys.lazy.compactMap { eps[$0] ?? nil }.first ?? (eps.count == 1 ? eps.first!.value : nil)
        guard let text = [chosen?.MacAddress, config.MacAddress].compactMap({ $0 }).first(where: { !$0.isEmpty }) else { return nil }
        if let why = MACAddress.problem(text) { throw EngineError.bad(why) }
        return MACAddress(text)!.description
    }

    /// Starts (or joins) the teardown of a container's network: detach from its network if
    /// attached (address, veth and port rules released), remove the namespace file, rewrite
    /// the peers' /etc/hosts.
    @discardableResult
    func beginNetworkTeardown(_ id: String) -> Task<Void, Never> {
        let previous = slots[id]?.teardown?.task
        let c = record(id)
        let cni = cni, networks = networks, netns = paths.netns(id)
        let networkID = c?.networkID, hadEndpoint = c?.endpoint != nil
        if hadEndpoint { update(id) { $0.endpoint = nil } }
        nextTeardownToken += 1
        let token = nextTeardownToken
        let task = Task {
            await previous?.value
            // The network's config and the attachment record are read on a pool thread.
            let outcome = try? await self.blocking { () -> (detached: String?, failure: String?) in
                let net = networkID.flatMap { try? networks.inspect($0) }
                let recorded = net.map { FS.exists(cni.paths.attachmentFile(containerID: id, networkID: $0.id)) } ?? false
                var failure: String?
                let detach = net != nil && (recorded || hadEndpoint)
                if detach, let net {
                    do { try cni.detach(containerID: id, netnsPath: netns, network: net) } catch { failure = "\(error)" }
                }
                NetworkNamespace.remove(at: netns)
                return (detach ? net?.id : nil, failure)
            }
            await self.networkReleased(id, token: token, networkID: outcome?.detached, failure: outcome?.failure)
        }
        slots[id]?.teardown = (token, task)
        return task
    }

    func networkReleased(_ id: String, token: Int, networkID: String?, failure: String?) async {
        if slots[id]?.teardown?.token == token { slots[id]?.teardown = nil }
        if let failure {
            EngineLog.logger.warning("detaching container \(id.prefix(12)) from its network: \(failure)")
        }
        if let networkID { await refreshPeers(networkID: networkID, except: id) }
    }

    /// Waits until no network teardown of the container is running.
    func awaitTeardown(_ id: String) async {
        while let t = slots[id]?.teardown { await t.task.value; if slots[id]?.teardown?.token == t.token { slots[id]?.teardown = nil } }
    }

    /// Whether containers on the network find each other by name: a user-defined network
    /// does; cryo0, like Docker's default bridge, does not. (The store is read on the pool.)
    nonisolated func resolvesNames(_ networkID: String) async -> Bool {
        let store = networks
        return (try? await blocking { try store.inspect(networkID).name != NetworkDefaults.defaultName }) ?? false
    }

    /// Other running containers on the network, by name and by alias (for a network that
    /// `resolvesNames`).
    func peers(of id: String, networkID: String) -> [(name: String, ip: String)] {
        let others = allRecords.filter { $0.id != id && $0.endpoint?.networkID == networkID }.sorted { $0.name < $1.name }
        var out = others.flatMap { c in
            c.endpoint.map { e in NetworkAliases.names(name: c.name, aliases: c.networkAliases).map { ($0, e.ip) } } ?? []
        }
        // The container's own links: their aliases, at the linked container's address (by its
        // name now: one recreated under that name is found again).
        for l in (try? NetworkLinks.parse(record(id)?.networkLinks)) ?? [] {
            if let t = others.first(where: { $0.name == l.target }), let e = t.endpoint { out.append((l.alias, e.ip)) }
        }
        return out
    }

    /// `--add-host` entries for the container's /etc/hosts (checked at create), host-gateway
    /// as its network's gateway.
    nonisolated static func extraHosts(_ c: StoredContainer) -> [(name: String, ip: String)] {
        ExtraHosts.resolved((try? ExtraHosts.parse(c.hostConfig.ExtraHosts)) ?? [], gateway: c.endpoint?.gateway)
    }

    /// The names on the container's own /etc/hosts line besides its hostname.
    nonisolated static func ownAliases(_ c: StoredContainer, hostname: String) -> [String] {
        NetworkAliases.names(name: c.name, aliases: c.networkAliases).filter { $0 != hostname }
    }

    func etcDir(_ id: String) -> String { paths.containerDir(id) }

    /// Writes the container's hostname, hosts and resolv.conf (bind-mounted into it).
    func writeEtcFiles(_ id: String) async throws {
        guard let c = record(id) else { return }
        let hostname = c.config.Hostname.flatMap { $0.isEmpty ? nil : $0 } ?? String(id.prefix(12))
        let aliases = Self.ownAliases(c, hostname: hostname)
        let ip = c.endpoint?.ip
        var found: [(name: String, ip: String)] = []
        if let e = c.endpoint, await resolvesNames(e.networkID) { found = self.peers(of: id, networkID: e.networkID) }
        let peers = found
        let dir = etcDir(id)
        let extra = Self.extraHosts(c)
        try await blocking { try ContainerFiles.write(dir: dir, hostname: hostname, ip: ip, peers: peers, aliases: aliases, extraHosts: extra) }
    }

    /// Rewrites /etc/hosts of every running container on the network (a peer came or went).
    func refreshPeers(networkID: String, except: String?) async {
        var jobs: [(dir: String, hostname: String, ip: String, aliases: [String], peers: [(name: String, ip: String)],
                    extra: [(name: String, ip: String)])] = []
        let named = await resolvesNames(networkID)
        // The records are read after that await, so the jobs are of the containers there now.
        for c in allRecords where c.id != except {
            guard let e = c.endpoint, e.networkID == networkID else { continue }
            let hostname = c.config.Hostname.flatMap { $0.isEmpty ? nil : $0 } ?? String(c.id.prefix(12))
            jobs.append((etcDir(c.id), hostname, e.ip, Self.ownAliases(c, hostname: hostname), named ? peers(of: c.id, networkID: networkID) : [],
                         Self.extraHosts(c)))
        }
        if jobs.isEmpty { return }
        let work = jobs
        try? await blocking {
            for j in work {
                try? ContainerFiles.updateHosts(dir: j.dir, hostname: j.hostname, ip: j.ip, peers: j.peers, aliases: j.aliases,
                                                extraHosts: j.extra)
            }
        }
    }

    /// At start or restore, after the namespace exists: attach to the container's network
    /// (`ip`: the restore's recorded address, else `--ip`), then write its /etc files and
    /// tell the peers. A failed attach leaves nothing behind (CNIRunner undoes it).
    func attachNetwork(_ id: String, restoreIP: String?, restorePorts: [PortMapping]? = nil, restoreMAC: String? = nil) async throws {
        guard let c = record(id) else { return }
        if c.hostConfig.NetworkMode == "host" { return }
        if let netID = c.networkID {
            let net: NetworkConfig
            let store = networks
            do { net = try await blocking { try store.inspect(netID) } } catch {
                throw EngineError(.notFound, "network \(c.networkName ?? netID) not found")
            }
            let cni = cni, netns = paths.netns(id)
            let ip = restoreIP ?? c.requestedIP
            let ports = restorePorts ?? c.portMappings ?? []
            // The endpoint's MAC: the checkpoint's, else the container's own (--mac-address or
            // the one cryo chose at create), so it stays the same across starts and restores.
            let mac = (restoreMAC ?? c.macAddress).flatMap(MACAddress.init) ?? MACAddress.random()
            let att: Attachment
            do {
                att = try await blocking {
                    let att = try cni.attach(containerID: id, netnsPath: netns, network: net, ip: ip, mac: mac, ports: ports)
                    FaultPoint.hit("network-attached")   // attached, not yet in the record
                    return att
                }
            } catch {
                let e = Self.apiError(error)
                if let ee = e as? EngineError { throw EngineError(ee.code, "container \(c.name) on network \(net.name): \(ee.message)", cause: ee.cause) }
                throw e
            }
            update(id) { s in
                s.endpoint = att
                s.lastIP = att.ip
                if s.macAddress == nil { s.macAddress = att.mac.isEmpty ? mac.description : att.mac }
            }
        }
        try await writeEtcFiles(id)
        if let netID = c.networkID { await refreshPeers(networkID: netID, except: id) }
    }

    /// Before a restore: the checkpoint's address must still be free on its network.
    /// Returns what the checkpoint recorded (nil: it had no network).
    func checkRestoreAddress(_ c: StoredContainer, recorded: CheckpointNetwork?) async throws -> CheckpointNetwork? {
        guard let rec = recorded else { return nil }
        // The network store and CNI's allocations are read on the pool; the caller holds the
        // container's lock, so `c` is still its record after the await.
        let store = networks, cni = cni, networkID = c.networkID
        let (local, holders) = try await blocking { () -> (NetworkConfig?, [Attachment]) in
            (networkID.flatMap { try? store.inspect($0) }, (try? cni.attachments()) ?? [])
        }
        // A checkpoint brought from another host (a migration) names that host's network id;
        // here the segment's network has its own id: the container's network of the same
        // name whose subnet holds the address is the same segment.
        let sameID = c.networkID == rec.networkID && local != nil
        let sameSegment = local.map { n in
            n.name == rec.network && IPv4Address(rec.ip).map { ((try? n.parsedSubnet)?.contains($0)) == true } == true
        } ?? false
        guard let local, sameID || sameSegment else {
            throw EngineError.conflict("cannot restore container \(c.name): it was checkpointed on network \(rec.network) with address \(rec.ip), and that network is gone or no longer the container's")
        }
        if let other = holders.first(where: { $0.networkID == local.id && $0.ip == rec.ip && $0.containerID != c.id }) {
            let who = record(other.containerID)?.name ?? other.containerID
            throw EngineError.conflict("cannot restore container \(c.name): its address \(rec.ip) on network \(rec.network) is taken by container \(who); the checkpoint needs the same address")
        }
        return rec
    }
}
