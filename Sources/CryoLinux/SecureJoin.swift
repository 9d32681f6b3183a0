import Glibc

extension FS {
    /// Resolves `unsafePath` inside `root` the way the kernel would after a
    /// chroot to `root`: symlinks are followed, but ".." and absolute links can
    /// never climb out of `root`. Components that do not exist are kept
    /// lexically. (The idea of runc's securejoin; written for cryo.)
    public static func secureJoin(root: String, _ unsafePath: String) throws -> String {
        var pending = unsafePath.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        var resolved: [String] = []
        var linksFollowed = 0
        while !pending.isEmpty {
            let part = pending.removeFirst()
            if part == "." { continue }
            if part == ".." { if !resolved.isEmpty { resolved.removeLast() }; continue }
            let candidate = root + "/" + (resolved + [part]).joined(separator: "/")
            guard lstatMode(candidate) == S_IFLNK, let target = readlink(candidate) else {
                resolved.append(part)
                continue
            }
            linksFollowed += 1
            if linksFollowed > 255 {
                throw SyscallError("securejoin", "\(root) \(unsafePath)", errno: ELOOP)
            }
            if target.hasPrefix("/") { resolved = [] }
            pending = target.split(separator: "/", omittingEmptySubsequences: true).map(String.init) + pending
        }
        return resolved.isEmpty ? root : root + "/" + resolved.joined(separator: "/")
    }
}
