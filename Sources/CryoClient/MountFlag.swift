/// `--mount` as docker's CLI reads it (comma-separated key=value, CSV-style quotes not
/// supported): type=volume|bind, source|src, target|destination|dst, readonly|ro[=BOOL],
/// volume-nocopy[=BOOL], volume-label=K=V, volume-driver, volume-opt=K=V, bind-propagation.
/// Turned into HostConfig.Mounts' shape.
public struct MountBody: Codable, Sendable, Equatable {
    public var `Type`: String
    public var Source: String?
    public var Target: String
    public var ReadOnly: Bool?
    public var VolumeOptions: VolumeOptionsBody?
    public var BindOptions: BindOptionsBody?

    public struct VolumeOptionsBody: Codable, Sendable, Equatable {
        public var NoCopy: Bool?
        public var Labels: [String: String]?
        public var DriverConfig: DriverConfigBody?
    }
    public struct DriverConfigBody: Codable, Sendable, Equatable {
        public var Name: String?
        public var Options: [String: String]?
    }
    public struct BindOptionsBody: Codable, Sendable, Equatable {
        public var Propagation: String?
    }

    public static func parse(_ flag: String) throws -> MountBody {
        func bad(_ why: String) -> ClientError { ClientError.usage("invalid argument \"\(flag)\" for \"--mount\" flag: \(why)") }
        func bool(_ key: String, _ v: String?) throws -> Bool {
            guard let v else { return true }
            switch v.lowercased() {
            case "1", "true": return true
            case "0", "false": return false
            default: throw bad("invalid value for \(key): \(v)")
            }
        }
        var type = "volume"
        var source: String?, target: String?
        var readOnly: Bool?
        var noCopy: Bool?
        var labels: [String: String] = [:]
        var driver: String?
        var driverOpts: [String: String] = [:]
        var propagation: String?
        for field in flag.split(separator: ",", omittingEmptySubsequences: true).map(String.init) {
            let kv = field.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let key = kv[0].lowercased(), value = kv.count > 1 ? kv[1] : nil
            func need() throws -> String {
                guard let value else { throw bad("field '\(field)' must be a key=value pair") }
                return value
            }
            switch key {
            case "type": type = try need()
            case "source", "src": source = try need()
            case "target", "destination", "dst": target = try need()
            case "readonly", "ro": readOnly = try bool(key, value)
            case "volume-nocopy": noCopy = try bool(key, value)
            case "volume-label":
                let l = try need().split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                labels[l[0]] = l.count > 1 ? l[1] : ""
            case "volume-driver": driver = try need()
            case "volume-opt":
                let o = try need().split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                guard o.count == 2 else { throw bad("invalid volume-opt '\(value ?? "")': want KEY=VALUE") }
                driverOpts[o[0]] = o[1]
            case "bind-propagation": propagation = try need()
            default: throw bad("unexpected key '\(key)' in '\(field)'")
            }
        }
        guard type == "volume" || type == "bind" else { throw bad("mount type \"\(type)\" is not supported by cryo (volume or bind)") }
        guard let target, !target.isEmpty else { throw bad("target is required") }
        if type == "bind" {
            guard let source, !source.isEmpty else { throw bad("source is required when specifying bind mounts") }
            if noCopy != nil || !labels.isEmpty || driver != nil || !driverOpts.isEmpty {
                throw bad("cannot mix 'volume-*' options with mount type 'bind'")
            }
        } else if propagation != nil {
            throw bad("cannot mix 'bind-*' options with mount type 'volume'")
        }
        var m = MountBody(Type: type, Source: source, Target: target, ReadOnly: readOnly)
        if type == "volume" && (noCopy != nil || !labels.isEmpty || driver != nil || !driverOpts.isEmpty) {
            m.VolumeOptions = VolumeOptionsBody(NoCopy: noCopy, Labels: labels.isEmpty ? nil : labels,
                                                DriverConfig: driver == nil && driverOpts.isEmpty ? nil
                                                    : DriverConfigBody(Name: driver, Options: driverOpts.isEmpty ? nil : driverOpts))
        }
        if let propagation { m.BindOptions = BindOptionsBody(Propagation: propagation) }
        return m
    }
}
