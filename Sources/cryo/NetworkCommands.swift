import ArgumentParser
import CryoClient
import FoundationEssentials

struct NetworkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "network",
        abstract: "Manage networks (Linux bridges or macvlan, driven by the CNI plugins): create, ls, inspect, rm, connect, disconnect.",
        discussion: "Containers join one at create: `cryo run --network NAME [--ip ADDR]`, or later with `cryo network connect` (one network at a time). cryo0 (docker's \"bridge\") is the default.",
        subcommands: [NetworkCreate.self, NetworkList.self, NetworkInspect.self, NetworkRemove.self, NetworkPrune.self,
                      NetworkConnect.self, NetworkDisconnect.self])
}

struct NetworkCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a network; prints its ID.",
        discussion: """
        Without --subnet cryod picks the first free /24 of 198.18.0.0/15 (bridge only). \
        macvlan: -d macvlan -o parent=IFACE --subnet S [--gateway G] [--ip-range R] \
        [-o macvlan_mode=bridge|private|vepa|passthru]; containers get their own MAC and \
        address on the parent's segment, no published ports. Refused (exit 1, nothing \
        created): a taken name, a subnet overlapping another network, a gateway or ip-range \
        outside the subnet, an unknown driver or option, a parent that does not exist.
        """)

    @Option(name: .shortAndLong, help: ArgumentHelp("Driver to manage the Network: bridge or macvlan.", valueName: "string"))
    var driver: String = "bridge"

    @Option(name: .shortAndLong, help: ArgumentHelp("Set driver specific options (parent=IFACE, macvlan_mode=MODE; bridge: com.docker.network.bridge.name=NAME).", valueName: "map"))
    var opt: [String] = []

    @Option(name: .customLong("ip-range"), help: ArgumentHelp("Allocate container ip from a sub-range (CIDR inside the subnet).", valueName: "string"))
    var ipRange: String?

    @Option(help: ArgumentHelp("Subnet in CIDR format (IPv4), e.g. 198.19.5.0/24.", valueName: "string"))
    var subnet: String?

    @Option(help: ArgumentHelp("IPv4 Gateway for the master subnet (default: its first address).", valueName: "string"))
    var gateway: String?

    @Flag(help: "Restrict external access to the network (no default route in containers).")
    var `internal` = false

    @Option(help: ArgumentHelp("Set metadata on a network (KEY=VALUE).", valueName: "list"))
    var label: [String] = []

    @Argument(help: "The network name.") var name: String

    func validate() throws {
        if (gateway != nil || ipRange != nil) && subnet == nil { throw ValidationError("every ip-range or gateway must have a corresponding subnet") }
        for o in opt where !o.contains("=") { throw ValidationError("invalid option \"\(o)\": want KEY=VALUE") }
        for l in label where l.hasPrefix("=") { throw ValidationError("invalid label \"\(l)\": empty key") }
    }

    func run() throws {
        struct Body: Encodable {
            struct IPAMBody: Encodable {
                struct Pool: Encodable { var Subnet: String; var Gateway: String?; var IPRange: String? }
                var Driver = "default"
                var Config: [Pool]
            }
            var Name: String
            var Driver: String
            var Internal: Bool
            var IPAM: IPAMBody
            var Options: [String: String]
            var Labels: [String: String]
            var CheckDuplicate = true
        }
        var labels: [String: String] = [:]
        for l in label {
            let kv = l.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            labels[kv[0]] = kv.count > 1 ? kv[1] : ""
        }
        var options: [String: String] = [:]
        for o in opt {
            let kv = o.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            options[kv[0]] = kv[1]
        }
        let body = Body(Name: name, Driver: driver, Internal: `internal`,
                        IPAM: .init(Config: subnet.map { [.init(Subnet: $0, Gateway: gateway, IPRange: ipRange)] } ?? []),
                        Options: options, Labels: labels)
        do {
            let client = try daemon()
            let r = try client.call("POST", "/networks/create", json: try encode(body))
            let created = try client.decode(NetworkCreateResponseJSON.self, r.body, what: "network create")
            if let w = created.Warning, !w.isEmpty { err("WARNING: \(w)\n") }
            out(created.Id + "\n")
        } catch {
            throw fail(error)
        }
    }
}

struct NetworkList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List networks.", aliases: ["list"])

    @Flag(name: .shortAndLong, help: "Only display network IDs.")
    var quiet = false

    @Flag(name: .customLong("no-trunc"), help: "Do not truncate the output.")
    var noTrunc = false

    @Option(name: .long, help: ArgumentHelp("Output format: table (default), json (one object per line, docker's keys), or a Go template as docker's.", valueName: "string"))
    var format: String?

    func run() throws {
        do {
            let list = try daemon().get([NetworkJSON].self, "/networks").sorted { $0.Name < $1.Name }
            func id(_ n: NetworkJSON) -> String { noTrunc ? n.Id : Format.shortID(n.Id) }
            ListFormat.warnIfQuiet(format, quiet: quiet)
            if quiet {
                for n in list { out(id(n) + "\n") }
                return
            }
            if let template = ListFormat.template(format) {
                let rows = list.map { TemplateValue.object(NetworkContext($0, truncate: !noTrunc)) }
                try ListFormat.printList(template, rows: rows, header: NetworkContext.header)
                return
            }
            if ListFormat.isJSON(format) {
                struct Line: Encodable {
                    var CreatedAt, Driver, ID, IPv4, IPv6, Internal, Labels, Name, Scope: String
                }
                for n in list {
                    let labels = (n.Labels ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                    let line = Line(CreatedAt: n.Created ?? "", Driver: n.Driver ?? "", ID: id(n), IPv4: "true", IPv6: "false",
                                    Internal: String(n.Internal ?? false), Labels: labels, Name: n.Name, Scope: n.Scope ?? "local")
                    out(String(decoding: try encode(line), as: UTF8.self) + "\n")
                }
                return
            }
            out(Format.table([["NETWORK ID", "NAME", "DRIVER", "SCOPE"]] + list.map { [id($0), $0.Name, $0.Driver ?? "", $0.Scope ?? "local"] }))
        } catch {
            throw fail(error)
        }
    }
}

struct NetworkInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Display detailed information on one or more networks, as a JSON array.",
        discussion: "Unknown networks: \"Error: No such network\", exit 1.")

    @Option(name: .shortAndLong, help: ArgumentHelp("Format the output with a Go template (docker's), or json.", valueName: "string"))
    var format: String?

    @Argument(help: "Network names or IDs.") var networks: [String]

    func validate() throws {
        if networks.isEmpty { throw ValidationError("\"cryo network inspect\" requires at least 1 argument.") }
    }

    func run() throws {
        try ListFormat.checkInspect(format)
        let client = try daemon()
        var found: [[UInt8]] = []
        var missing: [String] = []
        for n in networks {
            do {
                found.append(trimmed(try client.call("GET", "/networks/\(path(n))").body))
            } catch let e as ClientError where e.isNotFound {
                missing.append(n)
            } catch {
                throw fail(error)
            }
        }
        try ListFormat.printInspect(format, items: found)
        for m in missing { err("Error: No such network: \(m)\n") }
        if !missing.isEmpty { throw ExitCode(1) }
    }
}

struct NetworkRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove one or more networks; prints each name.",
        discussion: "Refused for cryo0 and while containers are attached (exit 1).",
        aliases: ["remove"])

    @Argument(help: "Network names or IDs.") var networks: [String]

    func validate() throws {
        if networks.isEmpty { throw ValidationError("\"cryo network rm\" requires at least 1 argument.") }
    }

    func run() throws {
        let client = try daemon()
        try forEachTarget(networks) { n in
            try client.call("DELETE", "/networks/\(path(n))")
            out(n + "\n")
        }
    }
}
