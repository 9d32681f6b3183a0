/// The `path` of a `docker cp` archive request, read as dockerd reads it: absolute in the
/// container, cleaned, but a trailing "/" (follow a final link, it must be a directory) and
/// a trailing "/." (the directory's contents, not the directory) kept, as they change what
/// is copied. Pure: no file is touched here.
public struct ContainerCopyPath: Equatable, Sendable {
    /// "/" + the cleaned path, with a trailing "/" or "/." kept.
    public let absolute: String
    /// Everything up to the last "/" (resolved with every link followed).
    public let directory: String
    /// After the last "/": a name (looked at without following it), "" (trailing slash:
    /// the directory itself) or "." (the directory's contents).
    public let base: String

    public init(_ raw: String) throws {
        guard !raw.isEmpty else { throw ArchiveError("path cannot be empty", code: .invalidArgument) }
        guard !raw.utf8.contains(0) else { throw ArchiveError("path contains a NUL byte", code: .invalidArgument) }
        absolute = Self.preservingTrailing(Self.clean("/" + raw), original: raw)
        let slash = absolute.lastIndex(of: "/")!
        directory = String(absolute[...slash])
        base = String(absolute[absolute.index(after: slash)...])
    }

    /// The name dockerd gives the object: Go's `filepath.Base` of the absolute path — the
    /// stat's `name` and the first component of the archive's entries ("/" for the root,
    /// "." for a trailing "/.").
    public var name: String { Self.goBase(absolute) }

    /// Whether the request asks for the contents of a directory (trailing "/.").
    public var contentsOnly: Bool { base == "." }

    /// Go's `filepath.Clean` for an absolute path.
    public static func clean(_ path: String) -> String {
        var out: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { if !out.isEmpty { out.removeLast() }; continue }
            out.append(part)
        }
        return "/" + out.joined(separator: "/")
    }

    /// Go's `filepath.Base`: the last element, trailing slashes ignored; "/" for the root.
    public static func goBase(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        if p == "/" { return "/" }
        if p.isEmpty { return "." }
        if let i = p.lastIndex(of: "/") { return String(p[p.index(after: i)...]) }
        return String(p)
    }

    static func specifiesCurrentDir(_ p: String) -> Bool { goBase(p) == "." }

    /// go-archive's `PreserveTrailingDotOrSeparator`.
    static func preservingTrailing(_ cleaned: String, original: String) -> String {
        var c = cleaned
        if !specifiesCurrentDir(c) && specifiesCurrentDir(original) {
            if !c.hasSuffix("/") { c += "/" }
            c += "."
        }
        if !c.hasSuffix("/") && original.hasSuffix("/") { c += "/" }
        return c
    }

    /// Whether `path` (clean, absolute) is `mount` or below it.
    public static func isAtOrBelow(_ path: String, _ mount: String) -> Bool {
        let m = clean(mount)
        if m == "/" { return true }
        return path == m || path.hasPrefix(m + "/")
    }
}
