@testable import CryoClient
@testable import cryo
import Foundation
import Testing

/// `-p/--publish` values → docker's PortBindings, and what is refused.
@Suite struct PortSpecTests {
    @Test func forms() throws {
        #expect(try PortSpec.parse("80") == PortSpec(containerPort: 80))
        #expect(try PortSpec.parse("8080:80") == PortSpec(hostPort: "8080", containerPort: 80))
        #expect(try PortSpec.parse("8080:80/udp") == PortSpec(hostPort: "8080", containerPort: 80, proto: "udp"))
        #expect(try PortSpec.parse("127.0.0.1:8080:80/TCP") == PortSpec(hostIP: "127.0.0.1", hostPort: "8080", containerPort: 80))
        #expect(try PortSpec.parse("127.0.0.1::80") == PortSpec(hostIP: "127.0.0.1", containerPort: 80))
        #expect(try PortSpec.parse("53/udp").key == "53/udp")
    }

    @Test func refusals() throws {
        for bad in ["", "x", "0", "70000", "80:x", "0:80", "65536:80", "1.2.3:80:80", "300.1.1.1:80:80", "8000-8010:80-90",
                    "80/sctp", "80/foo", "[::1]:80:80", "1:2:3:4"] {
            if let e = #expect(throws: (any Error).self, "\(bad)", performing: { try PortSpec.parse(bad) }) {
                #expect("\(e)".contains("invalid port specification"), "\(bad): \(e)")
            }
        }
        #expect(try PortSpec.parseExposed("90") == "90/tcp")
        #expect(try PortSpec.parseExposed("53/udp") == "53/udp")
        #expect(throws: (any Error).self) { try PortSpec.parseExposed("80-90") }
    }

    func body(_ argv: [String]) throws -> [String: Any] {
        let run = try Run.parse(argv)
        var o = run.flags.options(image: run.image, command: run.command, detach: run.detach, isRun: true)
        o.consoleSize = nil
        let data = try CreateBody.build(o).encoded()
        return try #require(JSONSerialization.jsonObject(with: Data(data)) as? [String: Any])
    }

    @Test func publishIPAndNetworkFlagsToCreateBody() throws {
        let b = try body(["-p", "8080:80", "--publish", "127.0.0.1::90/udp", "-p", "91", "-P", "--expose", "92",
                          "--network", "web", "--ip", "198.19.5.10", "busybox"])
        let h = try #require(b["HostConfig"] as? [String: Any])
        let pb = try #require(h["PortBindings"] as? [String: [[String: String]]])
        #expect((pb["80/tcp"] ?? []) == [["HostIp": "", "HostPort": "8080"]])
        #expect((pb["90/udp"] ?? []) == [["HostIp": "127.0.0.1", "HostPort": ""]])
        #expect((pb["91/tcp"] ?? []) == [["HostIp": "", "HostPort": ""]])
        #expect((h["PublishAllPorts"] as? Bool) == true)
        #expect((h["NetworkMode"] as? String) == "web")
        #expect(Set((b["ExposedPorts"] as? [String: Any] ?? [:]).keys) == ["80/tcp", "90/udp", "91/tcp", "92/tcp"])
        let eps = try #require((b["NetworkingConfig"] as? [String: Any])?["EndpointsConfig"] as? [String: Any])
        #expect(((eps["web"] as? [String: Any])?["IPAMConfig"] as? [String: String])?["IPv4Address"] == "198.19.5.10")

        let withMAC = try body(["--network", "lan", "--ip", "198.19.5.11", "--mac-address", "02:42:c6:13:05:0b", "busybox"])
        let ep = try #require(((withMAC["NetworkingConfig"] as? [String: Any])?["EndpointsConfig"] as? [String: Any])?["lan"] as? [String: Any])
        #expect((ep["MacAddress"] as? String) == "02:42:c6:13:05:0b")
        #expect((ep["IPAMConfig"] as? [String: String])?["IPv4Address"] == "198.19.5.11")
        let macOnly = try body(["--mac-address", "02:42:c6:13:05:0c", "busybox"])
        let def = (macOnly["NetworkingConfig"] as? [String: Any])?["EndpointsConfig"] as? [String: Any]
        #expect(((def?["default"] as? [String: Any])?["MacAddress"] as? String) == "02:42:c6:13:05:0c")

        let plain = try body(["busybox"])
        #expect(plain["ExposedPorts"] == nil)
        #expect(plain["NetworkingConfig"] == nil)
        #expect((plain["HostConfig"] as? [String: Any])?["PortBindings"] == nil)
        #expect(throws: (any Error).self) { try body(["--ip", "not-an-ip", "busybox"]) }
        #expect(throws: (any Error).self) { try body(["-p", "80-90:80-90", "busybox"]) }
    }

    @Test func portsColumn() {
        #expect(Format.ports([
            PortJSON(IP: "127.0.0.1", PrivatePort: 90, PublicPort: 9000, Type: "udp"),
            PortJSON(IP: "0.0.0.0", PrivatePort: 80, PublicPort: 8080, Type: "tcp"),
            PortJSON(IP: nil, PrivatePort: 91, PublicPort: nil, Type: "tcp"),
        ]) == "0.0.0.0:8080->80/tcp, 127.0.0.1:9000->90/udp, 91/tcp")
        #expect(Format.ports([]) == "")
    }
}
