import CryoLinux
import FoundationEssentials
import Glibc

/// A named volume of the `local` driver: what `<root>/volumes/<name>/volume.json` records.
public struct Volume: Codable, Sendable, Equatable {
    public var name: String
    public var createdAt: String
    public var labels: [String: String]
    /// Made for one container (`-v /path`, an image's VOLUME): `rm -v` and a default prune remove it.
    public var anonymous: Bool
}

/// The `local` volume driver: one directory per volume under cryod's root,
/// `<root>/volumes/<name>/_data` (bind-mounted into containers) plus `volume.json`.
/// Every method does disk I/O: call them on the engine's pool, never on the actor.
public struct VolumeStore: Sendable {
    public let root: String
    public init(root: String) { self.root = root }

    public static let driver = "local"
    static let metadataFile = "volume.json"

    public func dir(_ name: String) -> String { root + "/" + name }
    public func data(_ name: String) -> String { dir(name) + "/_data" }

    /// dockerd's rule for local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
    public static func validate(_ name: String) throws {
        let u = Array(name.utf8)
        func alnum(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) }
        guard u.count >= 2, u.count <= 255, alnum(u[0]), u.dropFirst().allSatisfy({ alnum($0) || $0 == 95 || $0 == 46 || $0 == 45 }) else {
            throw EngineError.bad("\"\(name)\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")
        }
    }

    /// The volume, created if missing (as dockerd: creating an existing volume returns it).
    public func create(_ name: String, labels: [String: String] = [:], anonymous: Bool = false) throws -> Volume {
        try Self.validate(name)
        if let v = try get(name) { return v }
        try FS.mkdirAll(root, mode: 0o701)
        guard FS.lstatMode(root).map({ $0 & S_IFMT == S_IFDIR }) == true else {
            throw EngineError.internalError("volume store \(root) is not a directory (a symlink is refused)")
        }
        let d = dir(name)
        if mkdir(d, 0o701) != 0 && errno != EEXIST {
            throw EngineError.internalError("create volume \(name): mkdir \(d): \(String(cString: strerror(errno)))")
        }
        if mkdir(data(name), 0o755) != 0 && errno != EEXIST {
            throw EngineError.internalError("create volume \(name): mkdir \(data(name)): \(String(cString: strerror(errno)))")
        }
        let v = Volume(name: name, createdAt: rfc3339Now(), labels: labels, anonymous: anonymous)
        try FS.atomicWrite(d + "/" + Self.metadataFile, Array(try JSONEncoder().encode(v)), mode: 0o600)
        return v
    }

    /// nil: no such volume. A volume directory that is a symlink is not one of cryod's.
    public func get(_ name: String) throws -> Volume? {
        try Self.validate(name)
        guard FS.lstatMode(dir(name)).map({ $0 & S_IFMT == S_IFDIR }) == true,
              FS.lstatMode(data(name)).map({ $0 & S_IFMT == S_IFDIR }) == true else { return nil }
        let path = dir(name) + "/" + Self.metadataFile
        guard FS.lstatMode(path).map({ $0 & S_IFMT == S_IFREG }) == true else {
            return Volume(name: name, createdAt: rfc3339Now(), labels: [:], anonymous: false)
        }
        do { return try JSONDecoder().decode(Volume.self, from: Data(try FS.readBytes(path))) } catch {
            throw EngineError.internalError("volume \(name): \(path) cannot be read: \(error)")
        }
    }

    public func list() throws -> [Volume] {
        guard FS.isDirectory(root) else { return [] }
        return try FS.listDirectory(root).sorted().compactMap { n in
            (try? Self.validate(n)) == nil ? nil : try get(n)
        }
    }

    public func remove(_ name: String) throws {
        try Self.validate(name)
        try FS.removeAll(dir(name))
    }

    /// Bytes under the volume's data (for prune's SpaceReclaimed); symlinks not followed.
    public func size(_ name: String) -> Int64 { Self.treeSize(data(name)) }

    static func treeSize(_ path: String) -> Int64 {
        var st = stat()
        guard lstat(path, &st) == 0 else { return 0 }
        var total = Int64(st.st_size)
        if st.st_mode & S_IFMT == S_IFDIR {
            for n in (try? FS.listDirectory(path)) ?? [] { total += treeSize(path + "/" + n) }
        }
        return total
    }

    public func isEmpty(_ name: String) -> Bool { ((try? FS.listDirectory(data(name))) ?? []).isEmpty }
}
