import ArgumentParser
import CryoClient
import FoundationEssentials

struct VolumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "volume",
        abstract: "Manage volumes (the local driver: directories under cryod's root): create, ls, inspect, rm, prune.",
        discussion: """
        Containers mount them with `-v NAME:/path[:ro]` or `--mount type=volume,source=NAME,target=/path`; \
        a missing one is created, and an empty one starts as a copy of the image's directory there \
        (unless nocopy). `-v /path` makes an anonymous volume, which `rm -v` removes. A checkpoint \
        records the volumes it uses; its restore is refused when one is missing.
        """,
        subcommands: [VolumeCreate.self, VolumeList.self, VolumeInspect.self, VolumeRemove.self, VolumePrune.self])
}

func keyValues(_ list: [String], flag: String) throws -> [String: String] {
    var m: [String: String] = [:]
    for l in list {
        let kv = l.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        if kv[0].isEmpty { throw ValidationError("invalid \(flag) \"\(l)\": empty key") }
        m[kv[0]] = kv.count > 1 ? kv[1] : ""
    }
    return m
}

/// `--filter k=v` flags → the API's filters JSON ({"k": {"v": true}}).
func filtersJSON(_ list: [String]) throws -> [(String, String)] {
    guard !list.isEmpty else { return [] }
    var m: [String: [String: Bool]] = [:]
    for f in list {
        let kv = f.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard kv.count == 2 else { throw ValidationError("bad format of filter (expected name=value): \(f)") }
        m[kv[0], default: [:]][kv[1]] = true
    }
    return [("filters", String(decoding: try encode(m), as: UTF8.self))]
}

struct VolumeCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a volume; prints its name.",
        discussion: "Without a name cryod makes a 64-hex one. Only the local driver, without options; a bad name or another driver is refused (exit 1).")

    @Option(name: .shortAndLong, help: ArgumentHelp("Specify volume driver name (only local).", valueName: "string"))
    var driver: String = "local"

    @Option(help: ArgumentHelp("Set metadata for a volume (KEY=VALUE).", valueName: "list"))
    var label: [String] = []

    @Option(name: .shortAndLong, help: ArgumentHelp("Set driver specific options (refused: the local driver of cryo has none).", valueName: "map"))
    var opt: [String] = []

    @Argument(help: "The volume name.") var name: String?

    func run() throws {
        struct Body: Encodable { var Name: String; var Driver: String; var DriverOpts: [String: String]; var Labels: [String: String] }
        let body = Body(Name: name ?? "", Driver: driver, DriverOpts: try keyValues(opt, flag: "--opt"), Labels: try keyValues(label, flag: "--label"))
        do {
            let client = try daemon()
            let r = try client.call("POST", "/volumes/create", json: try encode(body))
            out(try client.decode(VolumeJSON.self, r.body, what: "volume create").Name + "\n")
        } catch {
            throw fail(error)
        }
    }
}

struct VolumeList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List volumes.", aliases: ["list"])

    @Flag(name: .shortAndLong, help: "Only display volume names.")
    var quiet = false

    @Option(name: .shortAndLong, help: ArgumentHelp("Provide filter values (dangling=true|false, name=, label=KEY[=VALUE], driver=).", valueName: "filter"))
    var filter: [String] = []

    @Option(name: .long, help: ArgumentHelp("Output format: table (default), json, or a Go template as docker's.", valueName: "string"))
    var format: String?

    func run() throws {
        do {
            let list = (try daemon().get(VolumeListJSON.self, "/volumes", query: try filtersJSON(filter)).Volumes ?? []).sorted { $0.Name < $1.Name }
            ListFormat.warnIfQuiet(format, quiet: quiet)
            if quiet {
                for v in list { out(v.Name + "\n") }
                return
            }
            if let template = ListFormat.template(format) {
                try ListFormat.printList(template, rows: list.map { .object(VolumeContext($0)) }, header: VolumeContext.header)
                return
            }
            if ListFormat.isJSON(format) {
                for v in list { out(TemplateJSON.encode(VolumeContext(v).jsonValue) + "\n") }
                return
            }
            out(Format.table([["DRIVER", "VOLUME NAME"]] + list.map { [$0.Driver ?? "local", $0.Name] }))
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail(error)
        }
    }
}

struct VolumeInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Display detailed information on one or more volumes, as a JSON array.",
        discussion: "Unknown volumes: \"Error: No such volume\", exit 1.")

    @Option(name: .shortAndLong, help: ArgumentHelp("Format the output with a Go template (docker's), or json.", valueName: "string"))
    var format: String?

    @Argument(help: "Volume names.") var volumes: [String]

    func validate() throws {
        if volumes.isEmpty { throw ValidationError("\"cryo volume inspect\" requires at least 1 argument.") }
    }

    func run() throws {
        try ListFormat.checkInspect(format)
        let client = try daemon()
        var found: [[UInt8]] = []
        var missing: [String] = []
        for v in volumes {
            do {
                found.append(trimmed(try client.call("GET", "/volumes/\(path(v))").body))
            } catch let e as ClientError where e.isNotFound {
                missing.append(v)
            } catch {
                throw fail(error)
            }
        }
        try ListFormat.printInspect(format, items: found)
        for m in missing { err("Error: No such volume: \(m)\n") }
        if !missing.isEmpty { throw ExitCode(1) }
    }
}

struct VolumeRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove one or more volumes; prints each name.",
        discussion: "Refused while a container (running or not) uses the volume, also with --force (exit 1).",
        aliases: ["remove"])

    @Flag(name: .shortAndLong, help: "Do not fail on a volume that does not exist.")
    var force = false

    @Argument(help: "Volume names.") var volumes: [String]

    func validate() throws {
        if volumes.isEmpty { throw ValidationError("\"cryo volume rm\" requires at least 1 argument.") }
    }

    func run() throws {
        let client = try daemon()
        try forEachTarget(volumes) { v in
            try client.call("DELETE", "/volumes/\(path(v))", query: force ? [("force", "1")] : [])
            out(v + "\n")
        }
    }
}

struct VolumePrune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove unused volumes: anonymous ones, named ones too with --all.",
        discussion: "Asks for confirmation unless --force. Filters: label=KEY[=VALUE], label!=KEY[=VALUE].")

    @Flag(name: .shortAndLong, help: "Remove all unused volumes, not just anonymous ones.")
    var all = false

    @Option(help: ArgumentHelp("Provide filter values (label=KEY[=VALUE], label!=…).", valueName: "filter"))
    var filter: [String] = []

    @Flag(name: .shortAndLong, help: "Do not prompt for confirmation.")
    var force = false

    func run() throws {
        struct Report: Decodable { var VolumesDeleted: [String]?; var SpaceReclaimed: Int64? }
        if !force {
            out(all ? "WARNING! This will remove all local volumes not used by at least one container.\n"
                    : "WARNING! This will remove anonymous local volumes not used by at least one container.\n")
            out("Are you sure you want to continue? [y/N] ")
            guard let line = readLine(), ["y", "yes"].contains(line.lowercased()) else { return }
        }
        do {
            let client = try daemon()
            let r = try client.call("POST", "/volumes/prune", query: try filtersJSON(filter + (all ? ["all=true"] : [])))
            let report = try client.decode(Report.self, r.body, what: "volume prune")
            let deleted = report.VolumesDeleted ?? []
            if !deleted.isEmpty { out("Deleted Volumes:\n" + deleted.map { $0 + "\n" }.joined() + "\n") }
            out("Total reclaimed space: \(Format.size(report.SpaceReclaimed ?? 0))\n")
        } catch {
            throw fail(error)
        }
    }
}
