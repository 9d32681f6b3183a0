import CryoLinux
import CryoNetwork
import FoundationEssentials

extension Engine {
    /// `POST /networks/{id}/connect`. A cryo container has at most one network endpoint, so
    /// it can join a network only while it has none (created with one and disconnected, as
    /// docker-compose 1.29 does to set a service's aliases). A container that is not running
    /// just records it (attached at the next start); a running one is attached at once: its
    /// address, published ports and /etc files, and its peers learn its name and aliases.
    public func connectNetwork(_ netRef: String, container ref: String,
                               endpoint: NetworkingConfig.EndpointSettings?) async throws {
        let net = try await blocking { try self.network(netRef) }
        let aliases = try NetworkAliases.from(endpoint)
        let ip = endpoint?.IPAMConfig?.IPv4Address.flatMap { $0.isEmpty ? nil : $0 }
        let mac = endpoint?.MacAddress.flatMap { $0.isEmpty ? nil : $0 }
        if let ip {
            guard let a = IPv4Address(ip) else { throw EngineError.bad("invalid IPv4 address \(ip)") }
            if (try? net.parsedSubnet)?.contains(a) != true {
                throw EngineError.bad("address \(ip) is not in network \(net.name)'s subnet \(net.subnet)")
            }
        }
        if let mac, let why = MACAddress.problem(mac) { throw EngineError.bad(why) }
        if !aliases.isEmpty && net.name == NetworkDefaults.defaultName {
            throw EngineError.bad("network-scoped aliases are only supported for user-defined networks")
        }
        let id = try resolve(ref).id
        try await withLock(id) {
            let c = try resolve(id)
            let mode = c.hostConfig.NetworkMode ?? ""
            if mode == "host" || mode == "none" {
                throw EngineError.bad("container \(c.name) is in network mode \(mode): it cannot be connected to network \(net.name)")
            }
            if c.networkID == net.id {
                throw EngineError.conflict("endpoint with name \(c.name) already exists in network \(net.name)")
            }
            if let other = c.networkName {
                throw EngineError(.unsupported, "container \(c.name) is on network \(other): a cryo container joins one network at a time; disconnect it from \(other) first")
            }
            if c.status == .restarting || c.status == .removing {
                throw EngineError.conflict("cannot connect container \(c.name) to network \(net.name): it is \(c.status.rawValue)")
            }
            if net.isMacvlan, !(c.portMappings ?? []).isEmpty {
                throw EngineError.bad("network \(net.name) is a macvlan network: container \(c.name) publishes ports, which a macvlan network cannot do")
            }
            let links = try checkedLinks(endpoint?.Links, network: net)
            var changed = c
            changed.networkName = net.name
            changed.networkID = net.id
            changed.networkAliases = aliases.isEmpty ? nil : aliases
            changed.networkLinks = links.isEmpty ? nil : links.map(\.text)
            changed.requestedIP = ip
            if let mac { changed.macAddress = MACAddress(mac)!.description }
            // A running container is attached at once: durably recorded first, so a cryod
            // killed meanwhile undoes a half-made attachment at its restart.
            if c.isRunning {
                changed.operation = PendingOperation(kind: .networkConnect, checkpoint: net.id, directory: "", began: rfc3339Now())
            }
            try await save(changed, durable: c.isRunning)
            if c.isRunning {
                do { try await attachNetwork(id, restoreIP: nil) } catch {
                    // A failed CNI attach undoes itself (CNIRunner); one that succeeded before a
                    // later step failed (the /etc files) left an endpoint: it is detached here.
                    if record(id)?.endpoint != nil {
                        let cni = cni, netns = paths.netns(id)
                        do { try await blocking { try cni.detach(containerID: id, netnsPath: netns, network: net) } } catch {
                            EngineLog.logger.warning("connect \(c.name) to \(net.name) failed and its endpoint could not be detached: \(error)")
                        }
                    }
                    var back = try resolve(id)
                    Self.clearNetwork(&back)
                    back.requestedIP = c.requestedIP
                    back.operation = nil
                    try? await save(back)
                    throw error
                }
                await faultPoint("network-connect-attached")
                endOperation(id)
            }
            events.emit("network", "connect", id: net.id, attributes: ["container": id, "name": net.name, "type": net.driver])
        }
    }

    /// A record with no network endpoint left (after a disconnect, or an undone connect).
    nonisolated static func clearNetwork(_ c: inout StoredContainer) {
        c.endpoint = nil
        c.networkName = nil
        c.networkID = nil
        c.networkAliases = nil
        c.networkLinks = nil
        c.requestedIP = nil
    }

    /// A connect or disconnect of a running container cryod was killed during. A connect whose
    /// endpoint was recorded had finished; otherwise whatever CNI made of it is deleted and the
    /// container is left off the network, as a failed connect leaves it. A disconnect is
    /// finished (CNI DEL again: it is idempotent).
    func resolveInterruptedNetworkChange(_ id: String, _ op: PendingOperation) async {
        guard let c = record(id) else { return }
        if op.kind == .networkConnect, c.endpoint != nil {
            note(id, "connect to network \(c.networkName ?? op.checkpoint) was interrupted by cryod's stop after it attached: kept")
            return
        }
        let cni = cni, netns = paths.netns(id), store = networks, netID = op.checkpoint
        do {
            try await blocking {
                guard let net = try? store.inspect(netID) else { return }
                try cni.detach(containerID: id, netnsPath: netns, network: net)
            }
        } catch {
            note(id, "undoing an interrupted network change: \(error)", level: .warning)
        }
        update(id) { Self.clearNetwork(&$0) }
        note(id, "\(op.kind == .networkConnect ? "connect to" : "disconnect from") network \(c.networkName ?? netID) was interrupted by cryod's stop: \(op.kind == .networkConnect ? "undone" : "finished")", level: .warning)
        if c.isRunning {
            try? await writeEtcFiles(id)
            await refreshPeers(networkID: netID, except: id)
        }
    }

    /// An endpoint's links, checked: only on a user-defined network (cryo has no legacy links
    /// on cryo0), and each to an existing container, as dockerd checks them.
    func checkedLinks(_ raw: [String]?, network: NetworkConfig?) throws -> [NetworkLinks.Link] {
        let links = try NetworkLinks.parse(raw)
        if links.isEmpty { return [] }
        guard let network, network.name != NetworkDefaults.defaultName else {
            throw EngineError.bad("links with an endpoint are only supported on user-defined networks (cryo has no legacy links)")
        }
        for l in links where (try? resolve(l.target)) == nil {
            throw EngineError.bad("could not get container for \(l.target): No such container")
        }
        return links
    }

    /// `POST /networks/{id}/disconnect`: the container leaves the network (its aliases and
    /// `--ip` go with the endpoint, as in dockerd; published ports stay, for a later connect).
    /// A running container keeps its network namespace with only its loopback; its address is
    /// released and its peers forget it.
    public func disconnectNetwork(_ netRef: String, container ref: String) async throws {
        let net = try await blocking { try self.network(netRef) }
        let id = try resolve(ref).id
        try await withLock(id) {
            let c = try resolve(id)
            guard c.networkID == net.id else {
                throw EngineError.conflict("container \(c.name) is not connected to network \(net.name)")
            }
            if c.status == .restarting || c.status == .removing {
                throw EngineError.conflict("cannot disconnect container \(c.name) from network \(net.name): it is \(c.status.rawValue)")
            }
            if c.isRunning, c.endpoint != nil {
                try await beginOperation(id, PendingOperation(kind: .networkDisconnect, checkpoint: net.id, directory: "", began: rfc3339Now()))
                let cni = cni, netns = paths.netns(id)
                do { try await blocking { try cni.detach(containerID: id, netnsPath: netns, network: net) } } catch {
                    endOperation(id)
                    throw Self.apiError(error)
                }
                await faultPoint("network-disconnect-detached")
            }
            var changed = try resolve(id)
            Self.clearNetwork(&changed)
            changed.operation = nil
            try await save(changed)
            if c.isRunning {
                try? await writeEtcFiles(id)
                await refreshPeers(networkID: net.id, except: id)
            }
            events.emit("network", "disconnect", id: net.id, attributes: ["container": id, "name": net.name, "type": net.driver])
        }
    }
}
