import Glibc

/// The confinement flags of `run`/`create` mapped as the docker CLI maps them:
/// capabilities normalised (CAP_ prefix, upper case; one both added and dropped is only
/// added), `--security-opt seccomp=FILE` sent as the file's JSON, `systempaths=unconfined`
/// sent as empty MaskedPaths and ReadonlyPaths, `--device` split into its three fields.
public enum SecurityFlags {
    public static func capabilities(add: [String], drop: [String]) -> (add: [String]?, drop: [String]?) {
        func normalise(_ list: [String]) -> [String] {
            var seen = Set<String>()
            return list.map { c -> String in
                let up = c.uppercased()
                return up == "ALL" || up.hasPrefix("CAP_") ? up : "CAP_" + up
            }.filter { seen.insert($0).inserted }
        }
        var a = normalise(add)
        var d = normalise(drop)
        if a.contains("ALL") { a = ["ALL"] }
        if d.contains("ALL") { d = ["ALL"] }
        d.removeAll { a.contains($0) }
        return (a.isEmpty ? nil : a.sorted(), d.isEmpty ? nil : d.sorted())
    }

    /// (SecurityOpt, MaskedPaths, ReadonlyPaths).
    public static func securityOptions(_ opts: [String], readFile: (String) throws -> String = readWholeFile)
        throws -> (options: [String]?, maskedPaths: [String]?, readonlyPaths: [String]?) {
        var out: [String] = []
        var unconfinedPaths = false
        for o in opts {
            let sep = o.firstIndex(of: "=") ?? o.firstIndex(of: ":")
            let key = sep.map { String(o[..<$0]) } ?? o
            let value = sep.map { String(o[o.index(after: $0)...]) } ?? ""
            switch key {
            case "seccomp" where value != "unconfined" && value != "builtin" && !value.isEmpty:
                let json: String
                do { json = try readFile(value) } catch {
                    throw ClientError.usage("opening seccomp profile (\(value)) failed: \(error)")
                }
                let blank: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
                out.append("seccomp=" + String(json.drop(while: blank).reversed().drop(while: blank).reversed()))
            case "systempaths":
                guard value == "unconfined" else {
                    throw ClientError.usage("invalid --security-opt: \"\(o)\": only systempaths=unconfined is valid")
                }
                unconfinedPaths = true
            default:
                out.append(o)
            }
        }
        return (out.isEmpty ? nil : out, unconfinedPaths ? [] : nil, unconfinedPaths ? [] : nil)
    }

    /// `--device HOST[:CONTAINER][:PERMISSIONS]`.
    public static func device(_ spec: String) throws -> CreateBody.DeviceBody {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        func isPermissions(_ s: String) -> Bool { !s.isEmpty && s.count <= 3 && s.allSatisfy { "rwm".contains($0) } }
        var host = parts[0], container = "", permissions = "rwm"
        switch parts.count {
        case 1: break
        case 2:
            if isPermissions(parts[1]) { permissions = parts[1] } else { container = parts[1] }
        case 3:
            guard isPermissions(parts[2]) else { throw ClientError.usage("invalid device mode: \(parts[2])") }
            container = parts[1]
            permissions = parts[2]
        default:
            throw ClientError.usage("invalid device specification: \(spec)")
        }
        guard host.hasPrefix("/") else { throw ClientError.usage("invalid device specification: \(spec): the host path must be absolute") }
        if container.isEmpty { container = host }
        if host.count > 1 && host.hasSuffix("/") { host.removeLast() }
        return CreateBody.DeviceBody(PathOnHost: host, PathInContainer: container, CgroupPermissions: permissions)
    }

    public static func readWholeFile(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw ClientError.usage("open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buf, buf.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw ClientError.usage("read \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytes += buf[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
