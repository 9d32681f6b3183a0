import Glibc

// docker's formatter contexts: the fields `docker ps/images/network ls --format` expose,
// computed from cryod's list answers as the docker CLI computes them.

/// `docker ps` rows: .ID .Names .Image .Command .CreatedAt .RunningFor .Ports .State
/// .Status .Size .Labels .Label "k" .Mounts .Networks .LocalVolumes .Platform.
public struct ContainerContext: TemplateObject {
    public let container: ContainerSummaryJSON
    public let truncate: Bool
    public let now: Double

    public init(_ c: ContainerSummaryJSON, truncate: Bool, now: Double) {
        container = c
        self.truncate = truncate
        self.now = now
    }

    public var typeName: String { "*formatter.ContainerContext" }

    static let headers: [String: String] = [
        "ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
        "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM",
    ]
    public static var header: TemplateValue { .object(TemplateHeader(names: headers)) }

    public func field(_ name: String, args: [TemplateValue]) throws -> TemplateValue? {
        if name == "Label" { return .string(container.Labels?[try TemplateHeader.labelName(args)] ?? "") }
        guard Self.headers[name] != nil else { return nil }
        if !args.isEmpty { throw TemplateFunctionError(calling: false, message: "\(name) has arguments but cannot be invoked as function") }
        let c = container
        switch name {
        case "ID": return .string(truncate ? Format.shortID(c.Id) : c.Id)
        case "Names": return .string(names)
        case "Image": return .string(image)
        case "Command":
            let cmd = c.Command ?? ""
            return .string(GoQuote.quote(truncate ? Format.ellipsis(cmd, 20) : cmd))
        case "CreatedAt": return .string(c.Created.map(Format.localTime) ?? "")
        case "RunningFor":
            guard let t = c.Created, t > 0 else { return .string("") }
            return .string(Format.duration(seconds: now - Double(t)) + " ago")
        case "Ports": return .string(Format.ports(c.Ports ?? []))
        case "State": return .string(c.State ?? "")
        case "Status": return .string(c.Status ?? "")
        case "Size":
            let rw = Format.size(c.SizeRw ?? 0)
            if let v = c.SizeRootFs, v > 0 { return .string("\(rw) (virtual \(Format.size(v)))") }
            return .string(rw)
        case "Labels": return .string(TemplateHeader.joinedLabels(c.Labels))
        case "Mounts":
            return .string((c.Mounts ?? []).map { m in
                let n = (m.Name ?? "").isEmpty ? (m.Source ?? "") : m.Name!
                return truncate ? Format.ellipsis(n, 15) : n
            }.joined(separator: ","))
        case "Networks": return .string((c.NetworkSettings?.Networks ?? [:]).keys.sorted().joined(separator: ","))
        case "LocalVolumes": return .string(String((c.Mounts ?? []).filter { $0.Driver == "local" }.count))
        case "Platform": return .null
        default: return nil
        }
    }

    /// The names without the leading "/"; truncated output shows the first one that is not a
    /// link ("other/alias").
    var names: String {
        let all = (container.Names ?? []).map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 }
        if truncate, let plain = all.first(where: { !$0.contains("/") }) { return plain }
        return all.joined(separator: ",")
    }

    /// docker shows a short ID for an image given by ID, and drops a name's digest when truncating.
    var image: String {
        let i = container.Image ?? ""
        guard truncate else { return i.isEmpty ? "<no image>" : i }
        if let id = container.ImageID, Format.shortID(id) == Format.shortID(i) { return Format.shortID(i) }
        if i.hasPrefix("sha256:"), i.count == 71 { return i }
        if let at = i.firstIndex(of: "@") { return String(i[..<at]) }
        return i
    }

    public var jsonValue: TemplateValue {
        var m: [String: TemplateValue] = [:]
        for k in Self.headers.keys { m[k] = (try? field(k, args: [])) ?? .null }
        return .map(m)
    }
}

/// `docker images` rows: .ID .Repository .Tag .Digest .CreatedSince .CreatedAt .Size
/// .Containers .SharedSize .UniqueSize .VirtualSize.
public struct ImageContext: TemplateObject {
    public let image: ImageSummaryJSON
    public let repository: String
    public let tag: String
    public let truncate: Bool
    public let now: Double

    public init(_ i: ImageSummaryJSON, repository: String, tag: String, truncate: Bool, now: Double) {
        image = i
        self.repository = repository
        self.tag = tag
        self.truncate = truncate
        self.now = now
    }

    public var typeName: String { "*formatter.imageContext" }

    static let headers: [String: String] = [
        "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "CreatedSince": "CREATED",
        "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE",
        "UniqueSize": "UNIQUE SIZE", "VirtualSize": "SIZE",
    ]
    public static var header: TemplateValue { .object(TemplateHeader(names: headers)) }

    /// One row per tag, "<none>" for an untagged image, as `docker images` lists them.
    public static func rows(_ i: ImageSummaryJSON, truncate: Bool, now: Double) -> [ImageContext] {
        let tags = (i.RepoTags ?? []).filter { $0 != "<none>:<none>" }
        if tags.isEmpty { return [ImageContext(i, repository: "<none>", tag: "<none>", truncate: truncate, now: now)] }
        return tags.map { t in
            let (r, tag) = Format.splitReference(t)
            return ImageContext(i, repository: r, tag: tag, truncate: truncate, now: now)
        }
    }

    public func field(_ name: String, args: [TemplateValue]) throws -> TemplateValue? {
        guard Self.headers[name] != nil else { return nil }
        if !args.isEmpty { throw TemplateFunctionError(calling: false, message: "\(name) has arguments but cannot be invoked as function") }
        let i = image
        switch name {
        case "ID": return .string(truncate ? Format.shortID(i.Id) : i.Id)
        case "Repository": return .string(repository)
        case "Tag": return .string(tag)
        case "Digest":
            let d = (i.RepoDigests ?? []).first { $0.hasPrefix(repository + "@") }
            return .string(d.flatMap { $0.split(separator: "@").last.map(String.init) } ?? "<none>")
        case "CreatedSince":
            guard let t = i.Created, t > 0 else { return .string("N/A") }
            return .string(Format.duration(seconds: now - Double(t)) + " ago")
        case "CreatedAt": return .string(i.Created.map(Format.localTime) ?? "")
        case "Size", "VirtualSize": return .string(Format.size(i.Size ?? 0))
        case "Containers": return .string((i.Containers ?? -1) == -1 ? "N/A" : String(i.Containers!))
        case "SharedSize": return .string((i.SharedSize ?? -1) == -1 ? "N/A" : Format.size(i.SharedSize!))
        case "UniqueSize":
            guard let s = i.SharedSize, s != -1, let size = i.Size, size != -1 else { return .string("N/A") }
            return .string(Format.size(size - s))
        default: return nil
        }
    }

    public var jsonValue: TemplateValue {
        var m: [String: TemplateValue] = [:]
        for k in Self.headers.keys { m[k] = (try? field(k, args: [])) ?? .null }
        return .map(m)
    }
}

/// `docker network ls` rows: .ID .Name .Driver .Scope .IPv4 .IPv6 .Internal .Labels
/// .Label "k" .CreatedAt.
public struct NetworkContext: TemplateObject {
    public let network: NetworkJSON
    public let truncate: Bool

    public init(_ n: NetworkJSON, truncate: Bool) {
        network = n
        self.truncate = truncate
    }

    public var typeName: String { "*formatter.networkContext" }

    static let headers: [String: String] = [
        "ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4", "IPv6": "IPV6",
        "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
    ]
    public static var header: TemplateValue { .object(TemplateHeader(names: headers)) }

    public func field(_ name: String, args: [TemplateValue]) throws -> TemplateValue? {
        if name == "Label" { return .string(network.Labels?[try TemplateHeader.labelName(args)] ?? "") }
        guard Self.headers[name] != nil else { return nil }
        if !args.isEmpty { throw TemplateFunctionError(calling: false, message: "\(name) has arguments but cannot be invoked as function") }
        let n = network
        switch name {
        case "ID": return .string(truncate ? Format.shortID(n.Id) : n.Id)
        case "Name": return .string(n.Name)
        case "Driver": return .string(n.Driver ?? "")
        case "Scope": return .string(n.Scope ?? "local")
        case "IPv4": return .string(String(n.EnableIPv4 ?? true))
        case "IPv6": return .string(String(n.EnableIPv6 ?? false))
        case "Internal": return .string(String(n.Internal ?? false))
        case "Labels": return .string(TemplateHeader.joinedLabels(n.Labels))
        case "CreatedAt": return .string(n.Created.map(Format.localTime(rfc3339:)) ?? "")
        default: return nil
        }
    }

    public var jsonValue: TemplateValue {
        var m: [String: TemplateValue] = [:]
        for k in Self.headers.keys { m[k] = (try? field(k, args: [])) ?? .null }
        return .map(m)
    }
}

/// A table's header row: each field is its column title ("CONTAINER ID" for .ID); a label
/// column is titled by the label's last dotted part, as docker does.
public struct TemplateHeader: TemplateObject {
    public let names: [String: String]
    public var typeName: String { "formatter.SubHeaderContext" }

    public init(names: [String: String]) { self.names = names }

    public func field(_ name: String, args: [TemplateValue]) throws -> TemplateValue? {
        if name == "Label" {
            let last = try Self.labelName(args).split(separator: ".", omittingEmptySubsequences: false).last.map(String.init) ?? ""
            return .string(String(last.map { $0 == "-" || $0 == "_" ? " " : $0 }))
        }
        return names[name].map { .string($0) }
    }

    public var jsonValue: TemplateValue { .map(names.mapValues { .string($0) }) }

    static func labelName(_ args: [TemplateValue]) throws -> String {
        guard args.count == 1 else {
            throw TemplateFunctionError(calling: false, message: "wrong number of args for Label: want 1 got \(args.count)")
        }
        guard case .string(let s) = args[0] else {
            throw TemplateFunctionError(calling: false, message: "wrong type for value; expected string; got \(args[0].goTypeName)")
        }
        return s
    }

    static func joinedLabels(_ labels: [String: String]?) -> String {
        (labels ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }
}

/// Go's strconv.Quote for docker's COMMAND column.
enum GoQuote {
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.value < 0x20 || u.value == 0x7f { out += "\\x" + (u.value < 0x10 ? "0" : "") + String(u.value, radix: 16) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}

extension Format {
    /// docker events' time: "2026-12-04T19:30:00.123456789+00:00" (RFC 3339 with nanoseconds,
    /// local time zone).
    public static func rfc3339Nano(_ nanos: Int64) -> String {
        var t = time_t(nanos / 1_000_000_000)
        var tm = tm()
        localtime_r(&t, &tm)
        var buf = [CChar](repeating: 0, count: 64)
        let n = strftime(&buf, buf.count, "%Y-%m-%dT%H:%M:%S", &tm)
        let base = String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let frac = String(nanos % 1_000_000_000).leftPad(9)
        let off = tm.tm_gmtoff
        let sign = off < 0 ? "-" : "+"
        let h = String(abs(off) / 3600).leftPad(2), m = String(abs(off) % 3600 / 60).leftPad(2)
        return "\(base).\(frac)\(sign)\(h):\(m)"
    }

    /// docker's CreatedAt: "2025-06-01 12:00:00 +0000 UTC" in the local time zone.
    public static func localTime(_ unix: Int64) -> String {
        var t = time_t(unix)
        var tm = tm()
        localtime_r(&t, &tm)
        var buf = [CChar](repeating: 0, count: 64)
        let n = strftime(&buf, buf.count, "%Y-%m-%d %H:%M:%S %z %Z", &tm)
        return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// An RFC 3339 time ("2026-01-01T00:00:00.123Z", "...+02:00") in docker's CreatedAt
    /// form; text that does not parse is shown as it is.
    public static func localTime(rfc3339 s: String) -> String {
        let b = Array(s.utf8)
        func num(_ a: Int, _ n: Int) -> Int? {
            guard a + n <= b.count else { return nil }
            return Int(String(decoding: b[a..<a + n], as: UTF8.self))
        }
        guard b.count >= 20, let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2), let se = num(17, 2) else {
            return s
        }
        var i = 19
        if i < b.count, b[i] == UInt8(ascii: ".") { i += 1; while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 } }
        var offset = 0
        if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-"), let oh = num(i + 1, 2), let om = num(i + 4, 2) {
            offset = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "-") ? -1 : 1)
        } else if !(i < b.count && b[i] == UInt8(ascii: "Z")) {
            return s
        }
        var tm = tm()
        tm.tm_year = Int32(y - 1900)
        tm.tm_mon = Int32(mo - 1)
        tm.tm_mday = Int32(d)
        tm.tm_hour = Int32(h)
        tm.tm_min = Int32(mi)
        tm.tm_sec = Int32(se)
        return localTime(Int64(timegm(&tm)) - Int64(offset))
    }
}

extension String {
    fileprivate func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
