/// A volume in `GET /volumes` and `/volumes/{name}`.
public struct VolumeJSON: Codable, Sendable {
    public var Name: String
    public var Driver: String?
    public var Mountpoint: String?
    public var CreatedAt: String?
    public var Labels: [String: String]?
    public var Scope: String?
}

public struct VolumeListJSON: Codable, Sendable {
    public var Volumes: [VolumeJSON]?
    public var Warnings: [String]?
}

/// `volume ls --format`: docker's volume fields (.Name .Driver .Scope .Mountpoint .Labels
/// .Label "k" .Links .Size .Availability .Group .Status; the cluster ones empty, .Links and .Size "N/A").
public struct VolumeContext: TemplateObject {
    public let volume: VolumeJSON
    public init(_ v: VolumeJSON) { volume = v }

    public var typeName: String { "*formatter.volumeContext" }

    static let headers: [String: String] = [
        "Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT", "Labels": "LABELS",
        "Links": "LINKS", "Size": "SIZE", "Availability": "AVAILABILITY", "Group": "GROUP", "Status": "STATUS",
    ]
    public static var header: TemplateValue { .object(TemplateHeader(names: headers)) }

    public func field(_ name: String, args: [TemplateValue]) throws -> TemplateValue? {
        if name == "Label" { return .string(volume.Labels?[try TemplateHeader.labelName(args)] ?? "") }
        guard Self.headers[name] != nil else { return nil }
        if !args.isEmpty { throw TemplateFunctionError(calling: false, message: "\(name) has arguments but cannot be invoked as function") }
        let v = volume
        switch name {
        case "Name": return .string(v.Name)
        case "Driver": return .string(v.Driver ?? "local")
        case "Scope": return .string(v.Scope ?? "local")
        case "Mountpoint": return .string(v.Mountpoint ?? "")
        case "Labels": return .string(TemplateHeader.joinedLabels(v.Labels))
        case "Links", "Size": return .string("N/A")
        default: return .string("")
        }
    }

    public var jsonValue: TemplateValue {
        var m: [String: TemplateValue] = [:]
        for k in Self.headers.keys { m[k] = (try? field(k, args: [])) ?? .null }
        return .map(m)
    }
}
