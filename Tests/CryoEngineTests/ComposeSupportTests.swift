@testable import CryoEngine
import CryoNetwork
import FoundationEssentials
import Testing

/// The pure parts of what docker-compose 1.29 needs from cryod: list filters by label (its
/// project's containers and networks), network aliases.
@Suite struct ComposeSupportTests {
    static func container(_ name: String, labels: [String: String], status: ContainerStatus = .running) -> StoredContainer {
        var cfg = ContainerConfig()
        cfg.Labels = labels
        var c = StoredContainer(id: String(repeating: name.hasPrefix("p_") ? "a" : "b", count: 64), name: name,
                                created: "2026-01-01T00:00:00Z", imageRef: "busybox:latest",
                                imageID: "sha256:" + String(repeating: "c", count: 64),
                                config: cfg, hostConfig: HostConfig(), path: "sh", args: [])
        c.status = status
        c.networkName = "p_back"
        c.networkID = String(repeating: "d", count: 64)
        return c
    }

    @Test func containerFiltersAsComposeSendsThem() throws {
        let web = Self.container("p_web_1", labels: ["com.docker.compose.project": "p", "com.docker.compose.service": "web",
                                                     "com.docker.compose.oneoff": "False"])
        let other = Self.container("app", labels: ["com.docker.compose.project": "q"], status: .exited)
        let f = try ContainerListFilter.parse(#"{"label":["com.docker.compose.project=p","com.docker.compose.oneoff=False"]}"#)
        #expect(f.matches(web) && !f.matches(other))
        #expect(try ContainerListFilter.parse(#"{"label":{"com.docker.compose.project":true}}"#).matches(other))
        #expect(!(try ContainerListFilter.parse(#"{"label":["com.docker.compose.service=redis"]}"#).matches(web)))
        #expect(try ContainerListFilter.parse(#"{"status":["created","exited"]}"#).matches(other))
        #expect(!(try ContainerListFilter.parse(#"{"status":["created","exited"]}"#).matches(web)))
        #expect(try ContainerListFilter.parse(#"{"name":["web"],"id":["aaaa"]}"#).matches(web))
        #expect(!(try ContainerListFilter.parse(#"{"name":["/app"]}"#).matches(web)))
        #expect(try ContainerListFilter.parse(#"{"name":["^/p_web_1$"]}"#).matches(web))
        #expect(!(try ContainerListFilter.parse(#"{"name":["^/web"]}"#).matches(web)))
        #expect(throws: EngineError.self) { try ContainerListFilter.parse(#"{"name":["(unclosed"]}"#) }
        #expect(try ContainerListFilter.parse(#"{"network":["p_back"],"ancestor":["busybox"]}"#).matches(web))
        #expect(try ContainerListFilter.parse(#"{"exited":["0"]}"#).matches(other))
        #expect(try ContainerListFilter.parse(nil).isEmpty)
        // Refused, never ignored.
        #expect(throws: EngineError.self) { try ContainerListFilter.parse(#"{"publish":["80"]}"#) }
        #expect(throws: EngineError.self) { try ContainerListFilter.parse(#"{"health":["sick"]}"#) }
        #expect(try ContainerListFilter.parse(#"{"health":["none"]}"#).matches(web))
        #expect(try !ContainerListFilter.parse(#"{"health":["healthy"]}"#).matches(web))
        #expect(throws: EngineError.self) { try ContainerListFilter.parse(#"{"status":["sleeping"]}"#) }
        #expect(throws: EngineError.self) { try ContainerListFilter.parse(#"{"exited":["x"]}"#) }
        #expect(throws: EngineError.self) { try ContainerListFilter.parse("[1]") }
    }

    @Test func networkFiltersAsComposeSendsThem() throws {
        var n = NetworkConfig(name: "p_back", id: String(repeating: "e", count: 64), subnet: "198.19.7.0/24",
                              gateway: "198.19.7.1", bridge: "cryo-x", labels: ["com.docker.compose.project": "p"],
                              created: "2026-01-01T00:00:00Z")
        #expect(try NetworkListFilter.parse(#"{"label":["com.docker.compose.project=p"]}"#).matches(n))
        #expect(!(try NetworkListFilter.parse(#"{"label":["com.docker.compose.project=q"]}"#).matches(n)))
        #expect(try NetworkListFilter.parse(#"{"name":["back"],"driver":["bridge"],"type":["custom"]}"#).matches(n))
        n.name = NetworkDefaults.defaultName
        #expect(!(try NetworkListFilter.parse(#"{"type":["custom"]}"#).matches(n)))
        #expect(throws: EngineError.self) { try NetworkListFilter.parse(#"{"dangling":["true"]}"#) }
        #expect(throws: EngineError.self) { try NetworkListFilter.parse(#"{"type":["other"]}"#) }
    }

    @Test func extraHostsParseBothSpellingsAndResolveHostGateway() throws {
        let e = try ExtraHosts.parse(["db:198.51.100.7", "gw=host-gateway", "v6:[2001:db8::1]", "v6b:2001:db8::2"])
        #expect(e.map(\.name) == ["db", "gw", "v6", "v6b"])
        #expect(e.map(\.ip) == ["198.51.100.7", "host-gateway", "2001:db8::1", "2001:db8::2"])
        #expect(ExtraHosts.resolved(e, gateway: "198.19.3.1").map(\.ip) == ["198.51.100.7", "198.19.3.1", "2001:db8::1", "2001:db8::2"])
        #expect(ExtraHosts.resolved(e, gateway: nil).map(\.name) == ["db", "v6", "v6b"])
        #expect(throws: EngineError.self) { try ExtraHosts.parse(["noaddress"]) }
        #expect(throws: EngineError.self) { try ExtraHosts.parse(["db:not-an-ip"]) }
        #expect(throws: EngineError.self) { try ExtraHosts.parse(["bad name:1.2.3.4"]) }
        #expect(throws: EngineError.self) { try ExtraHosts.parse(["x:1.2.3.4\n5.6.7.8 evil"]) }
        var h = HostConfig()
        h.ExtraHosts = ["db:198.51.100.7"]
        h.NetworkMode = "host"
        #expect(throws: EngineError.self) { try CreateValidation.validate(config: ContainerConfig(), hostConfig: h) }
    }

    @Test func linksAsComposeAndTheCLISendThem() throws {
        // compose: {"p_redis_1": "redis", ...} normalized by docker-py to "NAME:ALIAS".
        let l = try NetworkLinks.parse(["p_redis_1:redis", "p_redis_1:p_redis_1", "/db:/web/database", "cache", "cache"])
        #expect(l.map(\.text) == ["p_redis_1:redis", "p_redis_1:p_redis_1", "db:database", "cache:cache"])
        #expect(throws: EngineError.self) { try NetworkLinks.parse(["db:bad alias"]) }
        #expect(throws: EngineError.self) { try NetworkLinks.parse([":x"]) }
        #expect(throws: EngineError.self) { try NetworkLinks.parse(["x\n1.2.3.4 evil:y"]) }
    }

    @Test func aliasesAreCheckedDeduped() throws {
        let e = NetworkingConfig.EndpointSettings(Aliases: ["web", "0123456789ab", "web"])
        #expect(try NetworkAliases.from(e) == ["web", "0123456789ab"])
        #expect(try NetworkAliases.from(nil) == [])
        #expect(throws: EngineError.self) { try NetworkAliases.from(.init(Aliases: ["bad name"])) }
        #expect(throws: EngineError.self) { try NetworkAliases.from(.init(Aliases: ["x\n1.2.3.4 evil"])) }
        var linked = NetworkingConfig.EndpointSettings()
        linked.Links = ["db:db"]
        #expect(try NetworkAliases.from(linked) == [])
        #expect(NetworkAliases.names(name: "p_web_1", aliases: ["web", "p_web_1"]) == ["p_web_1", "web"])
    }
}
