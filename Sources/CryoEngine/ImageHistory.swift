import CryoImages

/// One row of `docker history` (`GET /images/{name}/history`), dockerd's shape.
public struct ImageHistoryItem: Codable, Sendable, Equatable {
    public var Id: String
    public var Created: Int64
    public var CreatedBy: String
    public var Tags: [String]?
    public var Size: Int64
    public var Comment: String
}

/// An image's build steps, newest first, each with the size of the layer it made — from the
/// config's `history` (oldest first; an `empty_layer` step made none) and the layers' sizes
/// (bottom first). As dockerd: the newest row carries the image id and its tags, the others
/// "<missing>" (their intermediate images are not in the store). An image without history
/// (`docker import`, a hand-made archive) gets one row per layer.
public enum ImageHistory {
    public static func items(imageID: String, tags: [String], config: ImageConfiguration,
                             layerSizes: [Int64]) -> [ImageHistoryItem] {
        let created = { (s: String?) in Int64(s.flatMap(LogReader.unixTime) ?? 0) }
        var rows: [ImageHistoryItem] = []
        if let history = config.history, !history.isEmpty {
            var layer = 0
            for h in history {
                var size: Int64 = 0
                if h.empty_layer != true {
                    size = layer < layerSizes.count ? layerSizes[layer] : 0
                    layer += 1
                }
                rows.append(ImageHistoryItem(Id: "<missing>", Created: created(h.created), CreatedBy: h.created_by ?? "",
                                             Tags: nil, Size: size, Comment: h.comment ?? ""))
            }
        } else {
            rows = layerSizes.map {
                ImageHistoryItem(Id: "<missing>", Created: created(config.created), CreatedBy: "", Tags: nil, Size: $0, Comment: "")
            }
        }
        rows.reverse()
        if !rows.isEmpty {
            rows[0].Id = imageID
            rows[0].Tags = tags
        }
        return rows
    }
}
