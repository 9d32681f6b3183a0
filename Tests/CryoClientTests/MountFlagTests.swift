@testable import CryoClient
@testable import cryo
import Foundation
import Testing

/// `--mount` strings and `-v` forms → HostConfig.Mounts, Binds and Config.Volumes.
@Suite struct MountFlagTests {
    @Test func volumeMountFields() throws {
        let m = try MountBody.parse("type=volume,source=data,target=/srv,readonly,volume-nocopy,volume-label=a=b")
        #expect(m.Type == "volume" && m.Source == "data" && m.Target == "/srv" && m.ReadOnly == true)
        #expect(m.VolumeOptions?.NoCopy == true && m.VolumeOptions?.Labels == ["a": "b"])
        let short = try MountBody.parse("src=x1,dst=/d,ro=false")
        #expect(short.Type == "volume" && short.Source == "x1" && short.Target == "/d" && short.ReadOnly == false)
        let anon = try MountBody.parse("type=volume,target=/anon")
        #expect(anon.Source == nil && anon.VolumeOptions == nil)
        let bind = try MountBody.parse("type=bind,source=/h,target=/c,bind-propagation=rslave")
        #expect(bind.Type == "bind" && bind.BindOptions?.Propagation == "rslave")
    }

    @Test func badMountsRefused() {
        for bad in ["type=volume,source=x", "type=tmpfs,target=/t", "type=bind,target=/c", "type=volume,target=/t,bogus=1",
                    "type=volume,target=/t,readonly=maybe", "type=bind,source=/h,target=/c,volume-nocopy",
                    "type=volume,target=/t,bind-propagation=shared"] {
            #expect(throws: ClientError.self, "\(bad)") { _ = try MountBody.parse(bad) }
        }
    }

    func body(_ argv: [String]) throws -> [String: Any] {
        let run = try Run.parse(argv)
        var o = run.flags.options(image: run.image, command: run.command, detach: run.detach, isRun: true)
        o.consoleSize = nil
        let data = try CreateBody.build(o).encoded()
        return try #require(JSONSerialization.jsonObject(with: Data(data)) as? [String: Any])
    }

    @Test func volumeFlagForms() throws {
        let b = try body(["-v", "/host:/h:ro", "-v", "named:/n", "-v", "/anon", "--mount", "src=m,dst=/m", "busybox"])
        let host = try #require(b["HostConfig"] as? [String: Any])
        #expect((host["Binds"] as? [String]) == ["/host:/h:ro", "named:/n"])
        #expect((b["Volumes"] as? [String: Any])?.keys.sorted() == ["/anon"])
        let mounts = try #require(host["Mounts"] as? [[String: Any]])
        #expect(mounts.count == 1 && (mounts[0]["Source"] as? String) == "m" && (mounts[0]["Target"] as? String) == "/m")
        #expect(throws: (any Error).self) { _ = try body(["-v", "named", "busybox"]) }
    }
}
