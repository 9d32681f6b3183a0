import CryoEngine
import CryoHTTP
import CryoNetwork
import FoundationEssentials
import Glibc

extension APIServer {
    func networkRoute(_ ex: HTTPExchange, _ method: String, _ p: [String]) async throws {
        switch (method, p.count) {
        case ("GET", 0): try await listNetworks(ex)
        case ("POST", 1) where p[0] == "create": try await createNetwork(ex)
        case ("POST", 1) where p[0] == "prune":
            let filter = try PruneFilter.parse(ex.request.query["filters"], now: Double(time(nil)), kind: .network)
            try await json(ex, 200, try await engine.pruneNetworks(filter))
        case ("GET", 1): try await inspectNetwork(ex, p[0])
        case ("DELETE", 1):
            try await engine.removeNetwork(p[0])
            try await noContent(ex)
        case ("POST", 2) where p[1] == "connect":
            guard let req = try await body(ex, NetworkConnectRequest.self) else { return }
            guard let c = req.Container, !c.isEmpty else { throw EngineError.bad("Container: a container name or id is required") }
            try await engine.connectNetwork(p[0], container: c, endpoint: req.EndpointConfig)
            try await ex.respond(status: 200)
        case ("POST", 2) where p[1] == "disconnect":
            guard let req = try await body(ex, NetworkDisconnectRequest.self) else { return }
            guard let c = req.Container, !c.isEmpty else { throw EngineError.bad("Container: a container name or id is required") }
            try await engine.disconnectNetwork(p[0], container: c)
            try await ex.respond(status: 200)
        default: throw EngineError(.notFound, "page not found")
        }
    }

    func listNetworks(_ ex: HTTPExchange) async throws {
        let filter = try NetworkListFilter.parse(ex.request.query["filters"])
        var out: [NetworkJSON] = []
        for n in try engine.listNetworks() where filter.matches(n) {
            out.append(Present.network(n, endpoints: await engine.endpoints(network: n.id)))
        }
        try await json(ex, 200, out)
    }

    func inspectNetwork(_ ex: HTTPExchange, _ ref: String) async throws {
        let n = try engine.network(ref)
        try await json(ex, 200, Present.network(n, endpoints: await engine.endpoints(network: n.id)))
    }

    func createNetwork(_ ex: HTTPExchange) async throws {
        guard let req = try await body(ex, NetworkCreateRequest.self) else { return }
        guard let name = req.Name, !name.isEmpty else { throw EngineError.bad("Name: a network name is required") }
        if req.EnableIPv6 == true { throw EngineError.bad("IPv6 networks are not supported by cryo") }
        let configs = req.IPAM?.Config ?? []
        if configs.count > 1 { throw EngineError.bad("only one IPAM config (subnet) per network is supported") }
        if let d = req.IPAM?.Driver, !d.isEmpty, d != "default" { throw EngineError.bad("IPAM driver \(d) is not supported") }
        let ipRange = configs.first?.IPRange.flatMap { $0.isEmpty ? nil : $0 }
        let subnet = configs.first?.Subnet.flatMap { $0.isEmpty ? nil : $0 }
        let gateway = configs.first?.Gateway.flatMap { $0.isEmpty ? nil : $0 }
        let n = try await engine.createNetwork(name: name, driver: req.Driver, subnet: subnet, gateway: gateway, ipRange: ipRange,
                                               options: req.Options ?? [:], internal: req.Internal ?? false, labels: req.Labels ?? [:])
        try await json(ex, 201, NetworkCreateResponse(Id: n.id, Warning: ""))
    }
}
