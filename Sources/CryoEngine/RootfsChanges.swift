import FoundationEssentials

/// `docker diff`: what a container changed in its filesystem, read from its overlay upper
/// directory. Kind 0 modified, 1 added, 2 deleted (Docker's numbers).
public struct RootfsChange: Codable, Sendable, Equatable {
    public var Path: String
    public var Kind: Int

    public init(Path: String, Kind: Int) {
        self.Path = Path
        self.Kind = Kind
    }

    public static let modified = 0, added = 1, deleted = 2
}

public enum RootfsChanges {
    /// One entry of the upper directory, as `changes` needs it.
    public struct Entry: Sendable, Equatable {
        public var path: String          // "/etc/hosts", relative to the container root
        public var isWhiteout: Bool      // a 0:0 character device: the lower file is deleted
        public init(path: String, isWhiteout: Bool = false) {
            self.path = path
            self.isWhiteout = isWhiteout
        }
    }

    /// The changes, sorted by path. An upper entry that exists in the image (`inLower`) is
    /// modified, otherwise added; a whiteout is deleted. A directory copied up only because
    /// something below it changed exists in the image, so it is modified, as Docker reports it.
    /// Paths cryo itself mounts over (`/etc/hosts` and the like) are not the container's
    /// changes and are left out by the caller.
    public static func changes(_ entries: [Entry], inLower: (String) -> Bool) -> [RootfsChange] {
        var out: [RootfsChange] = []
        for e in entries {
            if e.isWhiteout {
                out.append(RootfsChange(Path: e.path, Kind: RootfsChange.deleted))
            } else if inLower(e.path) {
                out.append(RootfsChange(Path: e.path, Kind: RootfsChange.modified))
            } else {
                out.append(RootfsChange(Path: e.path, Kind: RootfsChange.added))
            }
        }
        return out.sorted { $0.Path < $1.Path }
    }
}
