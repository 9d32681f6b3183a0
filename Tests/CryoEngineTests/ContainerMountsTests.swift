@testable import CryoEngine
import Testing

/// Binds, --mount, Config.Volumes and the image's VOLUMEs sorted into host binds and volumes.
@Suite struct ContainerMountsTests {
    func resolve(binds: [String] = [], mounts: [MountRequest] = [], anonymous: [String] = [], image: [String] = []) throws -> ContainerMounts {
        var n = 0
        return try ContainerMounts.resolve(binds: binds, mounts: mounts, anonymous: anonymous, imageVolumes: image,
                                           newName: { n += 1; return "anon\(n)" })
    }

    func mount(_ type: String, _ source: String?, _ target: String, ro: Bool? = nil, driver: String? = nil,
               opts: [String: String]? = nil, noCopy: Bool? = nil) -> MountRequest {
        var m = MountRequest()
        m.Type = type
        m.Source = source
        m.Target = target
        m.ReadOnly = ro
        if driver != nil || opts != nil || noCopy != nil {
            var o = MountRequest.VolumeOptions()
            o.NoCopy = noCopy
            if driver != nil || opts != nil {
                var d = MountRequest.DriverConfig()
                d.Name = driver
                d.Options = opts
                o.DriverConfig = d
            }
            m.VolumeOptions = o
        }
        return m
    }

    @Test func bindsSplitIntoHostPathsAndVolumes() throws {
        let r = try resolve(binds: ["/h:/a", "data:/b:ro,nocopy", "v2:/c:rw"])
        #expect(r.hostBinds == ["/h:/a"])
        #expect(r.volumes == [VolumeUse(name: "data", destination: "/b", readOnly: true, noCopy: true),
                              VolumeUse(name: "v2", destination: "/c")])
    }

    @Test func mountsAndAnonymousVolumes() throws {
        let r = try resolve(mounts: [mount("volume", "named", "/n", ro: true, noCopy: true), mount("volume", nil, "/x"),
                                     mount("bind", "/host", "/h", ro: true)],
                            anonymous: ["/y"], image: ["/n", "/img"])
        #expect(r.hostBinds == ["/host:/h:ro"])
        #expect(r.volumes == [VolumeUse(name: "named", destination: "/n", readOnly: true, noCopy: true),
                              VolumeUse(name: "anon1", destination: "/x", anonymous: true),
                              VolumeUse(name: "anon2", destination: "/y", anonymous: true),
                              VolumeUse(name: "anon3", destination: "/img", anonymous: true)])
    }

    /// docker-py lists its Binds' destinations in Config.Volumes too: no extra volume.
    @Test func configVolumesCoveredByBinds() throws {
        let r = try resolve(binds: ["v1:/d"], anonymous: ["/d"])
        #expect(r.volumes == [VolumeUse(name: "v1", destination: "/d")])
    }

    @Test func refused() {
        let cases: [() throws -> Void] = [
            { _ = try resolve(binds: ["bad/name:/x"]) },
            { _ = try resolve(binds: ["x:/a"]) },                       // one character: not a valid name
            { _ = try resolve(binds: ["vol:/a:shared"]) },
            { _ = try resolve(binds: ["vol:/a", "/h:/a"]) },            // duplicate mount point
            { _ = try resolve(mounts: [mount("volume", "v1", "/a", driver: "nfs")]) },
            { _ = try resolve(mounts: [mount("volume", "v1", "/a", opts: ["type": "nfs"])]) },
            { _ = try resolve(mounts: [mount("tmpfs", nil, "/t")]) },
            { _ = try resolve(mounts: [mount("volume", "v1", "rel")]) },
            { _ = try resolve(mounts: [mount("bind", "rel", "/a")]) },
            { _ = try resolve(mounts: [mount("bind", "/h\u{0}x", "/a")]) },
        ]
        for c in cases { #expect(throws: EngineError.self) { try c() } }
    }

    @Test func volumeNames() {
        for ok in ["ab", "a_b.c-d", "0x", String(repeating: "a", count: 64)] { #expect(throws: Never.self) { try VolumeStore.validate(ok) } }
        for bad in ["", "a", "-ab", ".ab", "a/b", "a b", "a:b", "../x"] { #expect(throws: EngineError.self) { try VolumeStore.validate(bad) } }
    }
}
