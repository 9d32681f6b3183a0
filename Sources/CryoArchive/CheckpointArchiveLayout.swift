import CryoImages
import CryoLinux

/// The names inside a checkpoint archive: podman's `container checkpoint --export` layout
/// (which CRI-O and checkpointctl read), plus cryo's own members, which other tools ignore.
public enum CheckpointArchiveLayout {
    public static let checkpointDirectory = "checkpoint"
    public static let configDump = "config.dump"
    public static let specDump = "spec.dump"
    public static let networkStatus = "network.status"
    public static let statsDump = "stats-dump"
    public static let rootfsDiff = "rootfs-diff.tar"
    public static let deletedFiles = "deleted.files"
    public static let devShm = "devshm-checkpoint.tar"
    public static let volumesDirectory = "volumes"
    /// cryo's: the container's create request (config and host config) and checkpoint metadata.
    public static let cryoContainer = "cryo-container.json"
    public static let cryoCheckpoint = "cryo-checkpoint.json"
    /// cryo's: the sha256 and size of every other member (`ArchiveDigests`).
    public static let digests = "cryo-digests.json"
}

/// How the whole archive stream is compressed (the inner tars never are), as podman's `--compress`.
public enum ArchiveCompression: String, Sendable, CaseIterable, Codable {
    case zstd, gzip, none

    public init(parsing s: String?) throws {
        guard let s, !s.isEmpty else { self = .zstd; return }
        guard let c = ArchiveCompression(rawValue: s.lowercased()) else {
            throw ArchiveError("unknown compression \"\(s)\": use zstd, gzip or none", code: .invalidArgument)
        }
        self = c
    }
}

/// A refusal or failure of the archive code; the message names the member and the problem.
/// Its code says whose fault it is: the archive's as sent (`invalidArchive`, the default: a
/// 400), or cryod's own files and the host's resources while writing or unpacking
/// (`internal`, a 500).
public struct ArchiveError: CodedError, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public let code: CryoFailure.Code
    public init(_ message: String, code: CryoFailure.Code = .invalidArchive) {
        self.message = message
        self.code = code
    }
    /// A failure of cryod's side (creating, writing, reading its own files), not the archive's.
    public static func own(_ message: String) -> ArchiveError { ArchiveError(message, code: .internal) }
    public var description: String { message }
}
