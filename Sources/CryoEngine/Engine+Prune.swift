import CryoImages
import CryoLinux
import CryoNetwork
import FoundationEssentials
import Glibc

extension Engine {
    public struct PruneReport: Sendable, Codable {
        public var ContainersDeleted: [String]
        public var SpaceReclaimed: UInt64
    }

    /// `docker container prune`: removes every container that is not running (created,
    /// exited, dead) and matches the filter; SpaceReclaimed is what their upper directories
    /// held. A container that cannot be removed is left, and the others still go.
    public func prune(_ filter: PruneFilter) async throws -> PruneReport {
        var report = PruneReport(ContainersDeleted: [], SpaceReclaimed: 0)
        let candidates = allRecords.filter { [.created, .exited, .dead].contains($0.status) }
            .filter { filter.matches(labels: $0.config.Labels ?? [:], created: LogReader.unixTime($0.created) ?? 0) }
        for c in candidates {
            let upper = paths.upper(c.id)
            let size = (try? await blocking { Self.diskUsage(upper) }) ?? 0
            do {
                try await remove(c.id, force: false)
            } catch {
                continue
            }
            report.ContainersDeleted.append(c.id)
            report.SpaceReclaimed += size
        }
        return report
    }

    /// Bytes of the regular files below `dir` (hard links counted once per name, as du -b).
    nonisolated static func diskUsage(_ dir: String) -> UInt64 {
        var total: UInt64 = 0
        func walk(_ d: String) {
            for name in (try? FS.listDirectory(d)) ?? [] {
                var st = stat()
                guard lstat(d + "/" + name, &st) == 0 else { continue }
                if st.st_mode & S_IFMT == S_IFDIR { walk(d + "/" + name) } else if st.st_mode & S_IFMT == S_IFREG { total += UInt64(st.st_size) }
            }
        }
        walk(dir)
        return total
    }
}

extension Engine {
    public struct ImagePruneReport: Sendable, Codable {
        public var ImagesDeleted: [ImageDeleteItem]
        public var SpaceReclaimed: UInt64
    }

    /// `docker image prune`: every image no container uses that is untagged (the default,
    /// `dangling=true`) or, with `dangling=false` (`-a`), tagged too, and matches `until` and
    /// the labels. SpaceReclaimed counts the layers that went with them. An image that cannot
    /// be removed (a container created from it meanwhile) is left; the others still go.
    public func pruneImages(_ filter: PruneFilter) async throws -> ImagePruneReport {
        let store = images
        let found = try await blocking { () -> [(StoredImage, ImageConfiguration?)] in
            try store.list().map { ($0, try? store.config(of: $0)) }
        }
        var report = ImagePruneReport(ImagesDeleted: [], SpaceReclaimed: 0)
        for (img, cfg) in found {
            guard !filter.dangling || img.repoTags.isEmpty,
                  !allRecords.contains(where: { $0.imageID == img.id.description }),
                  filter.matches(labels: cfg?.config?.Labels ?? [:], created: cfg?.created.flatMap(LogReader.unixTime) ?? 0)
            else { continue }
            let removed = try? await blocking { () -> (ImageStore.Removal, UInt64) in
                // Layers the removal deletes: measured before they go.
                let others = Set(try store.list().filter { $0.id != img.id }.flatMap(\.layers))
                let size = Set(img.layers).subtracting(others).reduce(UInt64(0)) { $0 + Self.diskUsage(store.layerPath($1)) }
                return (try store.remove(img.id.description), size)
            }
            guard let (removal, size) = removed else { continue }
            report.ImagesDeleted += removal.untagged.map { ImageDeleteItem(Untagged: $0, Deleted: nil) }
            if let d = removal.deletedImage { report.ImagesDeleted.append(ImageDeleteItem(Untagged: nil, Deleted: d.description)) }
            report.ImagesDeleted += removal.deletedLayers.map { ImageDeleteItem(Untagged: nil, Deleted: $0.description) }
            report.SpaceReclaimed += size
        }
        return report
    }

    public struct NetworkPruneReport: Sendable, Codable {
        public var NetworksDeleted: [String]
    }

    /// `docker network prune`: every network no container (running or not) refers to, except
    /// the default one, that matches `until` and the labels. (dockerd also takes the networks
    /// of stopped containers, which then cannot start; cryo keeps those.)
    public func pruneNetworks(_ filter: PruneFilter) async throws -> NetworkPruneReport {
        let all = try await blocking { try self.listNetworks() }
        var report = NetworkPruneReport(NetworksDeleted: [])
        for n in all where n.name != NetworkDefaults.defaultName {
            guard !allRecords.contains(where: { $0.networkID == n.id || $0.endpoint?.networkID == n.id }),
                  filter.matches(labels: n.labels, created: LogReader.unixTime(n.created) ?? 0)
            else { continue }
            do { try await removeNetwork(n.id) } catch { continue }
            report.NetworksDeleted.append(n.name)
        }
        return report
    }
}
