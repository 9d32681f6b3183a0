import CryoImages
import CryoLinux
import FoundationEssentials

/// `docker system df` (`GET /system/df`) and `docker ps -s`: what images and containers hold
/// on disk. Sizes are apparent sizes of regular files (as `du -b`), measured on the pool.
extension Engine {
    public struct ContainerUsage: Sendable {
        public var record: StoredContainer
        /// The writable layer (overlay upper dir), and that plus the image's layers.
        public var sizeRw: Int64
        public var sizeRootFs: Int64
    }

    public struct DiskUsageReport: Sendable {
        /// Every unpacked layer in the store, each counted once.
        public var layersSize: Int64
        /// Images with Size (their layers), SharedSize (those layers another image uses too)
        /// and Containers (how many use each).
        public var images: [ImageSummary]
        public var containers: [ContainerUsage]
        /// Volumes with the bytes in them and how many containers use each.
        public var volumes: [(volume: Volume, size: Int64, refCount: Int)]
    }

    public func diskUsage() async throws -> DiskUsageReport {
        let store = images
        let stored = try await blocking { () -> [(StoredImage, [Digest: Int64])] in
            try store.list().map { img in (img, Dictionary(img.layers.map { ($0, Self.treeSize(store.layerPath($0))) }) { a, _ in a }) }
        }
        var layerSizes: [Digest: Int64] = [:]
        var users: [Digest: Int] = [:]
        for (img, sizes) in stored {
            layerSizes.merge(sizes) { a, _ in a }
            for l in Set(img.layers) { users[l, default: 0] += 1 }
        }
        var summaries = try await imageSummaries()
        for i in summaries.indices {
            guard let (img, _) = stored.first(where: { $0.0.id.description == summaries[i].Id }) else { continue }
            summaries[i].SharedSize = Set(img.layers).filter { (users[$0] ?? 0) > 1 }.reduce(0) { $0 + (layerSizes[$1] ?? 0) }
        }
        let imageSize = Dictionary(summaries.map { ($0.Id, $0.Size) }) { a, _ in a }
        let vs = volumes
        let sized = try await blocking { try vs.list().map { ($0, vs.size($0.name)) } }
        let used = allRecords.flatMap { c in (c.volumes ?? []).map(\.name) }
        return DiskUsageReport(layersSize: layerSizes.values.reduce(0, +), images: summaries,
                               containers: try await containerUsage(allRecords, imageSize: imageSize),
                               volumes: sized.map { v, size in (v, size, used.filter { $0 == v.name }.count) })
    }

    /// Sizes of these containers' writable layers (and with their image, when known).
    public func containerUsage(_ records: [StoredContainer], imageSize: [String: Int64] = [:]) async throws -> [ContainerUsage] {
        let p = paths
        let rw = try await blocking { records.map { Int64(Self.diskUsage(p.upper($0.id))) } }
        return zip(records, rw).map { c, size in
            ContainerUsage(record: c, sizeRw: size, sizeRootFs: size + (imageSize[c.imageID] ?? 0))
        }
    }
}
