import CryoLinux
import Glibc

/// The rules for a client-chosen checkpoint directory (`--checkpoint-dir`, the API's
/// `CheckpointDir` and `dir`): it must lie inside cryod's root, outside every directory
/// cryod keeps its own state in (a checkpoint in `containers/` could overwrite another
/// container's files, one in `images/layers/` would put a container's memory into a layer
/// other containers read), and be reached without following a symlink (a container can
/// plant links in its own upper directory). Nothing the API receives writes outside
/// cryo's directories.
public enum CheckpointDirectory {
    /// Validates `raw` for `paths`. With `create`, missing directories are made (0700);
    /// without, a missing directory is returned as it is (the caller finds no checkpoint).
    public static func resolve(_ raw: String, paths: EnginePaths, create: Bool) throws -> String {
        let dir = try lexicalCheck(raw, paths: paths)
        do {
            try FS.directoryBeneath(root: paths.root, dir, create: create)
        } catch let e as SyscallError where e.errno == ENOENT && !create {
            return dir
        } catch {
            throw EngineError.bad("checkpoint directory \(raw) is refused: \(error)")
        }
        return dir
    }

    /// The checks that need no file system: absolute, no `..`, inside the root, not the
    /// root itself and not in any of cryod's state directories.
    public static func lexicalCheck(_ raw: String, paths: EnginePaths) throws -> String {
        guard raw.hasPrefix("/") else {
            throw EngineError.bad("checkpoint directory \"\(raw)\" must be an absolute path")
        }
        guard !raw.split(separator: "/").contains("..") else {
            throw EngineError.bad("checkpoint directory \(raw) is refused: it contains \"..\"")
        }
        let root = FS.clean(paths.root)
        let dir = FS.clean(raw)
        guard dir.hasPrefix(root + "/") else {
            throw EngineError.bad("checkpoint directory \(raw) is outside cryod's root \(root): the API only writes inside cryo's directories")
        }
        let first = dir.dropFirst(root.count + 1).split(separator: "/").first.map(String.init) ?? ""
        if first.hasPrefix(".") || EnginePaths.stateDirectoryNames.contains(first) {
            throw EngineError.bad("checkpoint directory \(raw) is refused: \(root)/\(first) holds cryod's own state; choose another directory under \(root)")
        }
        let exec = FS.clean(paths.execRoot)
        if dir == exec || dir.hasPrefix(exec + "/") {
            throw EngineError.bad("checkpoint directory \(raw) is refused: it is inside cryod's exec-root \(exec)")
        }
        return dir
    }
}
