import CryoLinux
import CryoOCI

/// One volume a container mounts (recorded in its StoredContainer).
public struct VolumeUse: Codable, Sendable, Equatable {
    public var name: String
    public var destination: String
    public var readOnly: Bool
    /// `nocopy`: no copy-up of the image's contents.
    public var noCopy: Bool
    /// Made for this container (`-v /path`, `--mount type=volume` without source, an image VOLUME).
    public var anonymous: Bool
    public var labels: [String: String]?
    public init(name: String, destination: String, readOnly: Bool = false, noCopy: Bool = false, anonymous: Bool = false,
                labels: [String: String]? = nil) {
        self.name = name
        self.destination = destination
        self.readOnly = readOnly
        self.noCopy = noCopy
        self.anonymous = anonymous
        self.labels = labels
    }
}

/// What a create request mounts, sorted out: host binds (`-v /src:/dst`, `--mount type=bind`)
/// and volumes (`-v NAME:/dst`, `--mount type=volume`, `-v /dst`, the image's VOLUMEs).
/// Pure; anonymous volumes get a fresh 64-hex name from `newName`.
public struct ContainerMounts: Sendable, Equatable {
    public var hostBinds: [String] = []
    public var volumes: [VolumeUse] = []

    public static func resolve(binds: [String], mounts: [MountRequest], anonymous: [String], imageVolumes: [String],
                               newName: () -> String = { randomHexID() }) throws -> ContainerMounts {
        var r = ContainerMounts()
        var taken: Set<String> = []
        func claim(_ dst: String) throws {
            guard dst.hasPrefix("/") else { throw EngineError.bad("invalid mount config: mount path \"\(dst)\" must be absolute") }
            let d = FS.clean(dst)
            guard taken.insert(d).inserted else { throw EngineError.bad("Duplicate mount point: \(d)") }
        }
        for b in binds {
            let parts = b.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            if parts.first?.hasPrefix("/") == true || parts.count < 2 || parts.count > 3 || parts[0].isEmpty {
                if parts.count >= 2 { try claim(parts[1]) }
                r.hostBinds.append(b)   // SpecBuilder.bindMount checks it
                continue
            }
            try VolumeStore.validate(parts[0])
            try claim(parts[1])
            var use = VolumeUse(name: parts[0], destination: FS.clean(parts[1]))
            for o in parts.count == 3 ? parts[2].split(separator: ",").map(String.init) : [] {
                switch o {
                case "ro": use.readOnly = true
                case "rw": use.readOnly = false
                case "nocopy": use.noCopy = true
                case "z", "Z": break
                default: throw EngineError.bad("invalid HostConfig.Binds entry \"\(b)\": option \"\(o)\" is not supported for a volume (ro, rw, nocopy)")
                }
            }
            r.volumes.append(use)
        }
        for m in mounts {
            let type = m.Type ?? ""
            // A C string stops at NUL: "/a\u{0}b" would silently become "/a".
            if (m.Source ?? "").utf8.contains(0) || (m.Target ?? "").utf8.contains(0) {
                throw EngineError.bad("invalid HostConfig.Mounts: a source or target contains a NUL byte")
            }
            guard let target = m.Target, !target.isEmpty else { throw EngineError.bad("invalid mount config for type \"\(type)\": field Target must not be empty") }
            switch type {
            case "volume":
                if m.BindOptions != nil { throw EngineError.bad("invalid mount config for type \"volume\": field BindOptions must not be specified") }
                let o = m.VolumeOptions
                if let d = o?.DriverConfig?.Name, !d.isEmpty, d != VolumeStore.driver {
                    throw EngineError.bad("volume driver \"\(d)\" is not supported by cryo: only the local driver")
                }
                if let opts = o?.DriverConfig?.Options, !opts.isEmpty {
                    throw EngineError.bad("volume driver options (\(opts.keys.sorted().joined(separator: ","))) are not supported by cryo's local driver")
                }
                if let s = o?.Subpath, !s.isEmpty { throw EngineError.bad("volume-subpath is not supported by cryo") }
                try claim(target)
                let source = m.Source ?? ""
                if !source.isEmpty { try VolumeStore.validate(source) }
                r.volumes.append(VolumeUse(name: source.isEmpty ? newName() : source, destination: FS.clean(target),
                                           readOnly: m.ReadOnly ?? false, noCopy: o?.NoCopy ?? false, anonymous: source.isEmpty,
                                           labels: o?.Labels))
            case "bind":
                if m.VolumeOptions != nil { throw EngineError.bad("invalid mount config for type \"bind\": field VolumeOptions must not be specified") }
                guard let source = m.Source, source.hasPrefix("/") else {
                    throw EngineError.bad("invalid mount config for type \"bind\": source \"\(m.Source ?? "")\" must be an absolute path")
                }
                if m.BindOptions?.NonRecursive == true || m.BindOptions?.CreateMountpoint == true {
                    throw EngineError.bad("invalid mount config for type \"bind\": bind-nonrecursive and bind-create-mountpoint are not supported by cryo")
                }
                try claim(target)
                var opts = [(m.ReadOnly ?? false) ? "ro" : "rw"]
                if let p = m.BindOptions?.Propagation, !p.isEmpty { opts.append(p) }
                r.hostBinds.append(source + ":" + target + ":" + opts.joined(separator: ","))
            default:
                throw EngineError.bad("mount type \"\(type)\" is not supported by cryo (--mount takes type=volume or type=bind)")
            }
        }
        // Config.Volumes: docker-py also lists there the destinations of its Binds.
        for dst in anonymous.sorted() where !taken.contains(FS.clean(dst)) {
            try claim(dst)
            r.volumes.append(VolumeUse(name: newName(), destination: FS.clean(dst), anonymous: true))
        }
        // The image's VOLUMEs: an anonymous volume each, unless something else is mounted there.
        for dst in imageVolumes.sorted() where dst.hasPrefix("/") && !taken.contains(FS.clean(dst)) {
            taken.insert(FS.clean(dst))
            r.volumes.append(VolumeUse(name: newName(), destination: FS.clean(dst), anonymous: true))
        }
        return r
    }

    /// The bind mount that puts a volume's data at its destination.
    static func specMount(_ v: VolumeUse, data: String) -> Spec.Mount {
        Spec.Mount(destination: v.destination, type: "bind", source: data, options: ["rbind", v.readOnly ? "ro" : "rw", "rprivate"])
    }
}
