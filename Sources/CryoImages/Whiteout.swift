import CArchive
import CryoLinux
import Glibc

/// What a layer entry means for an overlayfs lower directory.
/// OCI/Docker layers mark a deleted `<name>` with a file `.wh.<name>` and an opaque
/// directory (hides everything below it in lower layers) with `<dir>/.wh..wh..opq`.
/// overlayfs wants a 0/0 character device `<name>` and the xattr
/// `trusted.overlay.opaque=y` on `<dir>` instead.
public enum WhiteoutAction: Equatable, Sendable {
    /// An ordinary entry: extract it as it is.
    case extract
    /// Create a 0/0 character device at this path (relative to the layer root).
    case whiteout(String)
    /// Mark this directory (relative; "" is the layer root) opaque.
    case opaque(String)

    public static let prefix = ".wh."
    public static let opaqueMarker = ".wh..wh..opq"

    /// Pure: the action for a normalized entry path (no leading "./" or "/").
    public static func of(path: String) -> WhiteoutAction {
        let (dir, name): (String, Substring) = {
            guard let slash = path.lastIndex(of: "/") else { return ("", Substring(path)) }
            return (String(path[..<slash]), path[path.index(after: slash)...])
        }()
        if name == opaqueMarker { return .opaque(dir) }
        guard name.hasPrefix(prefix), name.count > prefix.count else { return .extract }
        let target = String(name.dropFirst(prefix.count))
        return .whiteout(dir.isEmpty ? target : dir + "/" + target)
    }
}

enum OverlayWhiteout {
    /// Creates the overlay form of a whiteout inside `root` (which must be a resolved
    /// path). The parent is resolved with `secureJoin`, so a symlinked parent cannot
    /// move the device outside `root`.
    static func apply(_ action: WhiteoutAction, root: String, entry: String) throws {
        switch action {
        case .extract:
            return
        case .whiteout(let rel):
            // ".wh.." and ".wh..." would whiteout "." or "..": refused (no name to replace).
            let name = rel.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? ""
            guard !name.isEmpty, name != ".", name != ".." else {
                throw CryoFailure(.invalidArchive, "layer entry \"\(entry)\": refused: a whiteout must name a file, not \"\(name)\"")
            }
            let parent = try FS.secureJoin(root: root, FS.parent("/" + rel))
            try FS.mkdirAll(parent)
            let path = parent + "/" + name
            if let mode = FS.lstatMode(path) {
                if mode == S_IFDIR { try FS.removeAll(path) } else { unlink(path) }
            }
            guard mknod(path, S_IFCHR, 0) == 0 else {
                let e = errno
                throw CryoFailure(.invalidArchive, "layer entry \"\(entry)\": cannot create whiteout device \(path): \(SyscallError("mknod", path, errno: e).description)"
                    + (e == EPERM ? " (creating whiteouts needs root)" : ""))
            }
        case .opaque(let rel):
            let dir = try FS.secureJoin(root: root, "/" + rel)
            try FS.mkdirAll(dir)
            guard setxattr(dir, "trusted.overlay.opaque", "y", 1, 0) == 0 else {
                let e = errno
                throw CryoFailure(.invalidArchive, "layer entry \"\(entry)\": cannot mark \(dir) opaque: \(SyscallError("setxattr trusted.overlay.opaque", dir, errno: e).description)"
                    + (e == EPERM ? " (trusted.* xattrs need root)" : ""))
            }
        }
    }
}
