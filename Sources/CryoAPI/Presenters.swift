import CryoEngine
import CryoNetwork
import FoundationEssentials
import Glibc

/// Engine records → Docker's JSON shapes.
enum Present {
    static func state(_ c: StoredContainer) -> ContainerInspectState {
        // Restarting is also Running in dockerd's state (its restart is under way).
        ContainerInspectState(Status: c.status.rawValue, Running: c.isRunning || c.status == .restarting, Paused: c.status == .paused,
                           Restarting: c.status == .restarting, OOMKilled: false, Dead: c.status == .dead,
                           Pid: c.isRunning ? c.pid : 0, ExitCode: c.exitCode, Error: c.error,
                           StartedAt: c.startedAt, FinishedAt: c.finishedAt, Health: c.health)
    }

    static func inspect(_ c: StoredContainer, logPath: String, sandbox: String = "", volumeRoot: String = "") -> ContainerInspect {
        let mounts = (c.hostConfig.Binds ?? []).compactMap { b -> MountPoint? in
            let p = b.split(separator: ":").map(String.init)
            guard p.count >= 2 else { return nil }
            let ro = p.count > 2 && p[2].split(separator: ",").contains("ro")
            // Volume names (`-v NAME:/dst`) are shown from c.volumes below.
            guard p[0].hasPrefix("/") else { return nil }
            return MountPoint(Type: "bind", Source: p[0], Destination: p[1], Mode: p.count > 2 ? p[2] : "", RW: !ro, Propagation: "rprivate")
        } + (c.volumes ?? []).map { v in
            MountPoint(Type: "volume", Name: v.name, Source: volumeRoot + "/" + v.name + "/_data", Destination: v.destination,
                       Driver: "local", Mode: v.readOnly ? "ro" : "z", RW: !v.readOnly, Propagation: "")
        }
        // A record from before create checked ConsoleSize may hold negatives: the docker CLI
        // (a Go [2]uint) then fails to read the whole container, so inspect and rm break.
        var host = c.hostConfig
        if let cs = host.ConsoleSize, cs.count != 2 || cs.contains(where: { $0 < 0 }) { host.ConsoleSize = [0, 0] }
        return ContainerInspect(Id: c.id, Created: c.created, Path: c.path, Args: c.args, State: state(c),
                                Image: c.imageID, Name: "/" + c.name, RestartCount: c.restartCount, Driver: "overlay",
                                Platform: "linux", LogPath: logPath, Config: c.config, HostConfig: host, Mounts: mounts,
                                NetworkSettings: networkSettings(c, sandbox: sandbox))
    }

    static func hostIP(_ m: PortMapping) -> String { m.hostIP.isEmpty ? "0.0.0.0" : m.hostIP }

    static func networkSettings(_ c: StoredContainer, sandbox: String) -> NetworkSettingsJSON {
        let e = c.endpoint
        var ports: [String: [PortBindingJSON]] = [:]
        for m in e?.ports ?? [] {
            ports["\(m.containerPort)/\(m.protocol)", default: []].append(PortBindingJSON(HostIp: hostIP(m), HostPort: String(m.hostPort)))
        }
        var networks: [String: EndpointJSON] = [:]
        if let name = c.networkName, let id = c.networkID {
            networks[name] = EndpointJSON(Aliases: c.networkAliases, Links: c.networkLinks, NetworkID: id, EndpointID: e.map { _ in c.id } ?? "", Gateway: e?.gateway ?? "",
                                          IPAddress: e?.ip ?? "", IPPrefixLen: e?.prefixLength ?? 0, MacAddress: e?.mac ?? "")
        } else if c.hostConfig.NetworkMode == "host" || c.hostConfig.NetworkMode == "none" {
            let mode = c.hostConfig.NetworkMode ?? ""
            networks[mode] = EndpointJSON(NetworkID: mode, EndpointID: "", Gateway: "", IPAddress: "", IPPrefixLen: 0, MacAddress: "")
        }
        return NetworkSettingsJSON(Bridge: "", SandboxKey: c.isRunning && c.hostConfig.NetworkMode != "host" ? sandbox : "",
                                   Ports: ports, Gateway: e?.gateway ?? "", IPAddress: e?.ip ?? "",
                                   IPPrefixLen: e?.prefixLength ?? 0, MacAddress: e?.mac ?? "", Networks: networks)
    }

    static func network(_ n: NetworkConfig, endpoints: [StoredContainer]) -> NetworkJSON {
        var containers: [String: NetworkJSON.ContainerJSON] = [:]
        for c in endpoints {
            guard let e = c.endpoint else { continue }
            containers[c.id] = .init(Name: c.name, EndpointID: c.id, MacAddress: e.mac,
                                     IPv4Address: "\(e.ip)/\(e.prefixLength)", IPv6Address: "")
        }
        return NetworkJSON(Name: n.name, Id: n.id, Created: n.created, Scope: "local", Driver: n.driver, EnableIPv4: true,
                           EnableIPv6: false,
                           IPAM: .init(Driver: "default", Options: [:], Config: [.init(Subnet: n.subnet, Gateway: n.gateway, IPRange: n.ipRange)]),
                           Internal: n.internal, Attachable: false, Ingress: false, ConfigFrom: .init(Network: ""),
                           ConfigOnly: false, Containers: containers,
                           // A user's bridge network: its options as given, as dockerd shows them
                           // (docker-compose compares them with its file's).
                           Options: n.isMacvlan ? ["parent": n.parent ?? "", "macvlan_mode": n.macvlanMode ?? "bridge"]
                               : n.options ?? ["com.docker.network.bridge.name": n.bridge], Labels: n.labels)
    }

    static func summary(_ c: StoredContainer) -> ContainerSummary {
        let cmd = ([c.path] + c.args).joined(separator: " ")
        return ContainerSummary(Id: c.id, Names: ["/" + c.name], Image: c.imageRef, ImageID: c.imageID, Command: cmd,
                                Created: Int64(unix(c.created)), State: c.status.rawValue, Status: status(c),
                                Ports: (c.endpoint?.ports ?? []).map {
                                    PortJSON(IP: hostIP($0), PrivatePort: $0.containerPort, PublicPort: $0.hostPort, Type: $0.protocol)
                                }, Labels: c.config.Labels ?? [:])
    }

    /// A summary with the container's sizes (`ps -s`, `system df`).
    static func summary(_ u: Engine.ContainerUsage) -> ContainerSummary {
        var s = summary(u.record)
        s.SizeRw = u.sizeRw
        s.SizeRootFs = u.sizeRootFs
        return s
    }

    static func unix(_ t: String) -> Double { LogReader.unixTime(t) ?? 0 }

    /// "Up 5 minutes", "Exited (0) 2 seconds ago", "Created" — as `docker ps` shows.
    static func status(_ c: StoredContainer) -> String {
        let now = Double(time(nil))
        switch c.status {
        case .running:
            // With a health check: "Up 5 minutes (healthy)", "(health: starting)", as dockerd.
            return "Up " + human(now - unix(c.startedAt)) + (c.health.map { " (\($0.summary))" } ?? "")
        case .paused: return "Up " + human(now - unix(c.startedAt)) + " (Paused)"
        case .exited: return "Exited (\(c.exitCode)) " + human(now - unix(c.finishedAt)) + " ago"
        case .created: return "Created"
        case .restarting: return "Restarting (\(c.exitCode)) " + human(now - unix(c.finishedAt)) + " ago"
        case .removing: return "Removal In Progress"
        case .dead: return "Dead"
        }
    }

    static func human(_ seconds: Double) -> String {
        let s = Int(max(0, seconds))
        if s < 1 { return "Less than a second" }
        if s < 60 { return "\(s) second\(s == 1 ? "" : "s")" }
        if s < 3600 { let m = s / 60; return m == 1 ? "About a minute" : "\(m) minutes" }
        if s < 86400 { let h = s / 3600; return h == 1 ? "About an hour" : "\(h) hours" }
        let d = s / 86400
        return "\(d) day\(d == 1 ? "" : "s")"
    }
}
