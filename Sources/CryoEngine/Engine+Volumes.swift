import CryoLinux
import FoundationEssentials

/// Named volumes (`local` driver, VolumeStore): the API's verbs and the container side
/// (implicit creation at create, copy-up and existence checks at launch, `rm -v`).
extension Engine {
    public nonisolated var volumes: VolumeStore { VolumeStore(root: paths.root + "/volumes") }

    /// The containers (ids) that mount each volume.
    func volumeUsers() -> [String: [String]] {
        var users: [String: [String]] = [:]
        for c in allRecords { for v in c.volumes ?? [] { users[v.name, default: []].append(c.id) } }
        return users
    }

    public func createVolume(name: String?, driver: String?, options: [String: String]?, labels: [String: String]?) async throws -> Volume {
        if let d = driver, !d.isEmpty, d != VolumeStore.driver {
            throw EngineError.bad("volume driver \"\(d)\" is not supported by cryo: only the local driver")
        }
        if let o = options, !o.isEmpty {
            throw EngineError.bad("volume options (\(o.keys.sorted().joined(separator: ", "))) are not supported by cryo's local driver: it keeps plain directories under cryod's root")
        }
        let n = (name ?? "").isEmpty ? randomHexID() : name!
        try VolumeStore.validate(n)
        let store = volumes
        let l = labels ?? [:]
        let v = try await blocking { try store.create(n, labels: l) }
        events.emit("volume", "create", id: v.name, attributes: ["driver": VolumeStore.driver])
        return v
    }

    public func volume(_ name: String) async throws -> Volume {
        // As dockerd: a name no volume can have is simply not found.
        guard (try? VolumeStore.validate(name)) != nil else { throw EngineError(.notFound, "get \(name): no such volume") }
        let store = volumes
        guard let v = try await blocking({ try store.get(name) }) else { throw EngineError(.notFound, "get \(name): no such volume") }
        return v
    }

    public func listVolumes(_ filter: VolumeFilter) async throws -> [Volume] {
        let store = volumes
        let all = try await blocking { try store.list() }
        let users = volumeUsers()
        return all.filter { filter.matches($0, inUse: users[$0.name] != nil) }
    }

    /// dockerd refuses a volume in use even with force; force only forgives a missing one.
    public func removeVolume(_ name: String, force: Bool) async throws {
        try VolumeStore.validate(name)
        if let users = volumeUsers()[name] {
            throw EngineError.conflict("remove \(name): volume is in use - [\(users.joined(separator: ", "))]")
        }
        if let c = volumesMovingOut[name] {
            throw EngineError.conflict("remove \(name): volume is in use - it is moving to another host with container \(c) (cryo migrate)")
        }
        if volumeClaims[name] != nil || volumesBeingRemoved.contains(name) {
            throw EngineError.conflict("remove \(name): volume is in use - a container mounting it is being created (or it is being removed)")
        }
        volumesBeingRemoved.insert(name)
        defer { volumesBeingRemoved.remove(name) }
        let store = volumes
        let exists = try await blocking { try store.get(name) != nil }
        guard exists else {
            if force { return }
            throw EngineError(.notFound, "get \(name): no such volume")
        }
        try await blocking { try store.remove(name) }
        events.emit("volume", "destroy", id: name, attributes: ["driver": VolumeStore.driver])
    }

    /// Unused volumes matching the filter: anonymous ones, named ones too with `all`.
    public func pruneVolumes(_ filter: VolumeFilter) async throws -> (names: [String], bytes: Int64) {
        let store = volumes
        let all = try await blocking { try store.list() }
        let users = volumeUsers()
        let victims = all.filter {
            users[$0.name] == nil && volumeClaims[$0.name] == nil && !volumesBeingRemoved.contains($0.name) && volumesMovingOut[$0.name] == nil
                && (filter.all || $0.anonymous) && filter.matches($0, inUse: false)
        }.map(\.name)
        volumesBeingRemoved.formUnion(victims)
        defer { volumesBeingRemoved.subtract(victims) }
        return try await blocking {
            var done: [String] = [], bytes: Int64 = 0
            for n in victims {
                let size = store.size(n)
                try store.remove(n)
                done.append(n)
                bytes += size
            }
            return (done, bytes)
        }
    }

    /// `rm -v`: the container's anonymous volumes no other container mounts.
    func removeAnonymousVolumes(of c: StoredContainer) async {
        let users = volumeUsers()
        let names = (c.volumes ?? []).filter { $0.anonymous && (users[$0.name] ?? []).allSatisfy { $0 == c.id } }.map(\.name)
        guard !names.isEmpty else { return }
        let store = volumes
        _ = try? await blocking { for n in names { try store.remove(n) } }
    }

    /// At launch, on the pool: every volume must be there (a restore refuses without one:
    /// its contents are part of the container's state); a fresh start recreates a missing
    /// one, and copies the image's contents into an empty one (unless nocopy).
    nonisolated static func prepareVolumes(_ uses: [VolumeUse], store: VolumeStore, rootfs: String, restoring: Bool) throws {
        for v in uses {
            if try store.get(v.name) == nil {
                if restoring {
                    throw EngineError(.notFound, "restore refused: volume \(v.name) (mounted at \(v.destination)) does not exist; create it (docker volume create \(v.name)) with the data the checkpoint expects")
                }
                _ = try store.create(v.name, labels: v.labels ?? [:], anonymous: v.anonymous)
            }
            if !restoring && !v.noCopy {
                try VolumeCopyUp.run(rootfs: rootfs, destination: v.destination, into: store.data(v.name))
            }
        }
    }
}
