import FoundationEssentials
import Glibc

/// What `HEAD /containers/{id}/archive` answers in the `X-Docker-Container-Path-Stat`
/// header (and `GET` too): base64 of a JSON object in dockerd's field order. `mode` is a
/// Go `os.FileMode` — permission bits plus Go's own type bits (directory 1<<31, symlink
/// 1<<27…), not `st_mode` — because the docker CLI tests `Mode&os.ModeSymlink` and
/// `Mode.IsDir()` on it.
public struct ContainerPathStat: Codable, Equatable, Sendable {
    public var name: String
    public var size: Int64
    public var mode: UInt32
    public var mtime: String
    public var linkTarget: String

    public init(name: String, size: Int64, mode: UInt32, mtime: String, linkTarget: String) {
        self.name = name
        self.size = size
        self.mode = mode
        self.mtime = mtime
        self.linkTarget = linkTarget
    }

    public init(name: String, stat st: stat, linkTarget: String) {
        self.init(name: name, size: Int64(st.st_size), mode: Self.goFileMode(st.st_mode),
                  mtime: Self.rfc3339(seconds: Int64(st.st_mtim.tv_sec), nanoseconds: Int(st.st_mtim.tv_nsec)),
                  linkTarget: linkTarget)
    }

    public static let headerName = "X-Docker-Container-Path-Stat"

    // Go's io/fs.FileMode type and special bits.
    public static let goModeDir: UInt32 = 1 << 31
    public static let goModeSymlink: UInt32 = 1 << 27
    public static let goModeDevice: UInt32 = 1 << 26
    public static let goModeNamedPipe: UInt32 = 1 << 25
    public static let goModeSocket: UInt32 = 1 << 24
    public static let goModeSetuid: UInt32 = 1 << 23
    public static let goModeSetgid: UInt32 = 1 << 22
    public static let goModeCharDevice: UInt32 = 1 << 21
    public static let goModeSticky: UInt32 = 1 << 20
    public static let goModeIrregular: UInt32 = 1 << 19

    /// `st_mode` as Go's `os.FileMode` (what Go's `os.Lstat` reports).
    public static func goFileMode(_ m: mode_t) -> UInt32 {
        var out = UInt32(m) & 0o777
        switch m & S_IFMT {
        case S_IFDIR: out |= goModeDir
        case S_IFLNK: out |= goModeSymlink
        case S_IFBLK: out |= goModeDevice
        case S_IFCHR: out |= goModeDevice | goModeCharDevice
        case S_IFIFO: out |= goModeNamedPipe
        case S_IFSOCK: out |= goModeSocket
        case S_IFREG: break
        default: out |= goModeIrregular
        }
        if m & S_ISUID != 0 { out |= goModeSetuid }
        if m & S_ISGID != 0 { out |= goModeSetgid }
        if m & S_ISVTX != 0 { out |= goModeSticky }
        return out
    }

    public var isDirectory: Bool { mode & Self.goModeDir != 0 }
    public var isSymlink: Bool { mode & Self.goModeSymlink != 0 }

    /// Go's `time.Time` in JSON (RFC 3339 with nanoseconds, trailing zeros cut), in UTC.
    public static func rfc3339(seconds: Int64, nanoseconds: Int) -> String {
        var t = time_t(seconds)
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        func pad(_ v: Int32, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        var out = "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2))"
        if nanoseconds > 0 {
            var frac = pad(Int32(nanoseconds), 9)
            while frac.hasSuffix("0") { frac.removeLast() }
            out += "." + frac
        }
        return out + "Z"
    }

    /// The JSON object in dockerd's field order (JSONEncoder keeps none).
    public func json() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        func quoted(_ s: String) throws -> String { String(decoding: try encoder.encode(s), as: UTF8.self) }
        let text = "{\"name\":\(try quoted(name)),\"size\":\(size),\"mode\":\(mode),\"mtime\":\(try quoted(mtime)),\"linkTarget\":\(try quoted(linkTarget))}"
        return Array(text.utf8)
    }

    /// The header's value: base64 of the JSON object.
    public func headerValue() throws -> String {
        Data(try json()).base64EncodedString()
    }

    /// Decodes a header value (the CLI side).
    public static func decodeHeader(_ value: String) throws -> ContainerPathStat {
        guard let data = Data(base64Encoded: value) else {
            throw ArchiveError("\(headerName) is not base64: \(value)")
        }
        return try JSONDecoder().decode(ContainerPathStat.self, from: data)
    }
}
