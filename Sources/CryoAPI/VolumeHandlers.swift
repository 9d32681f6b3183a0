import CryoEngine
import CryoHTTP
import FoundationEssentials

/// A volume in dockerd's JSON (`UsageData` is null, as dockerd's outside `system df`).
struct VolumeJSON: Encodable, Sendable {
    var Name: String
    var Driver: String
    var Mountpoint: String
    var CreatedAt: String
    var Labels: [String: String]
    var Scope: String
    var Options: [String: String]?
    /// `system df` only: the volume's size and how many containers use it (null elsewhere).
    var usage: (size: Int64, refCount: Int)?

    enum Keys: String, CodingKey { case Name, Driver, Mountpoint, CreatedAt, Labels, Scope, Options, UsageData }
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(Name, forKey: .Name)
        try c.encode(Driver, forKey: .Driver)
        try c.encode(Mountpoint, forKey: .Mountpoint)
        try c.encode(CreatedAt, forKey: .CreatedAt)
        try c.encode(Labels, forKey: .Labels)
        try c.encode(Scope, forKey: .Scope)
        try c.encode(Options, forKey: .Options)
        if let usage {
            try c.encode(["Size": usage.size, "RefCount": Int64(usage.refCount)], forKey: .UsageData)
        } else {
            try c.encodeNil(forKey: .UsageData)
        }
    }
}

struct VolumeCreateRequest: Decodable, Sendable {
    var Name: String?
    var Driver: String?
    var DriverOpts: [String: String]?
    var Labels: [String: String]?
    /// Swarm cluster volumes (API 1.42+): refused.
    var ClusterVolumeSpec: [String: EmptyJSON]?
    struct EmptyJSON: Decodable, Sendable {}
}

struct VolumeListJSON: Encodable, Sendable {
    var Volumes: [VolumeJSON]
    var Warnings: [String]
}

struct VolumePruneJSON: Encodable, Sendable {
    var VolumesDeleted: [String]
    var SpaceReclaimed: Int64
}

extension APIServer {
    func volumeRoute(_ ex: HTTPExchange, _ method: String, _ p: [String]) async throws {
        switch (method, p.count) {
        case ("GET", 0): try await listVolumes(ex)
        case ("POST", 1) where p[0] == "create": try await createVolume(ex)
        case ("POST", 1) where p[0] == "prune": try await pruneVolumes(ex)
        case ("GET", 1): try await json(ex, 200, presentVolume(try await engine.volume(p[0])))
        case ("DELETE", 1):
            try await engine.removeVolume(p[0], force: flag(ex.request.query, "force"))
            try await noContent(ex)
        case ("PUT", 1): throw EngineError.bad("volume update is for cluster volumes, which cryo does not have")
        default: throw EngineError(.notFound, "page not found")
        }
    }

    func presentVolume(_ v: Volume) -> VolumeJSON {
        var labels = v.labels
        // As dockerd 23+ marks them (its prune tells anonymous volumes by this label).
        if v.anonymous { labels["com.docker.volume.anonymous"] = "" }
        return VolumeJSON(Name: v.name, Driver: VolumeStore.driver, Mountpoint: engine.volumes.data(v.name), CreatedAt: v.createdAt,
                          Labels: labels, Scope: "local", Options: nil)
    }

    func listVolumes(_ ex: HTTPExchange) async throws {
        let filter = try VolumeFilter.parse(ex.request.query["filters"], prune: false)
        let list = try await engine.listVolumes(filter).map(presentVolume)
        try await json(ex, 200, VolumeListJSON(Volumes: list, Warnings: []))
    }

    func createVolume(_ ex: HTTPExchange) async throws {
        guard let req = try await body(ex, VolumeCreateRequest.self) else { return }
        if req.ClusterVolumeSpec != nil { throw EngineError.bad("cluster volumes are not supported by cryo") }
        let v = try await engine.createVolume(name: req.Name, driver: req.Driver, options: req.DriverOpts, labels: req.Labels)
        try await json(ex, 201, presentVolume(v))
    }

    func pruneVolumes(_ ex: HTTPExchange) async throws {
        let filter = try VolumeFilter.parse(ex.request.query["filters"], prune: true)
        let (names, bytes) = try await engine.pruneVolumes(filter)
        try await json(ex, 200, VolumePruneJSON(VolumesDeleted: names, SpaceReclaimed: bytes))
    }
}
