import ArgumentParser
import CryoClient
import FoundationEssentials

// The everyday verbs of issue 13: top, rename, diff, stats, container prune (docker's output).

struct Top: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Display the running processes of a container (the host's ps, cut to the container).")
    @Argument(help: "Container (name or ID).") var container: String
    @Argument(parsing: .captureForPassthrough, help: "ps options (default -ef).") var psArgs: [String] = []
    func run() throws {
        struct Table: Decodable { var Titles: [String]; var Processes: [[String]] }
        let client = try daemon()
        let q = psArgs.isEmpty ? [] : [("ps_args", psArgs.joined(separator: " "))]
        let t = try client.get(Table.self, "/containers/\(path(container))/top", query: q)
        out(Format.table([t.Titles] + t.Processes))
    }
}

struct Rename: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Rename a container.")
    @Argument(help: "Container (name or ID).") var container: String
    @Argument(help: "New name.") var newName: String
    func run() throws {
        try daemon().call("POST", "/containers/\(path(container))/rename", query: [("name", newName)])
    }
}

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect changes to files or directories on a container's filesystem (A added, C changed, D deleted).")
    @Argument(help: "Container (name or ID).") var container: String
    func run() throws {
        struct Change: Decodable { var Path: String; var Kind: Int }
        let changes = try daemon().get([Change]?.self, "/containers/\(path(container))/changes") ?? []
        for c in changes { out(["C", "A", "D"][min(max(c.Kind, 0), 2)] + " " + c.Path + "\n") }
    }
}

struct Update: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Update configuration of one or more containers (limits apply to a running container at once). Prints each name.")
    @Option(name: .shortAndLong, help: ArgumentHelp("Memory limit (bytes, or with a unit: 64m, 1g).", valueName: "bytes"))
    var memory: String?
    @Option(name: .customLong("memory-swap"), help: ArgumentHelp("Swap limit equal to memory plus swap: -1 to enable unlimited swap.", valueName: "bytes"))
    var memorySwap: String?
    @Option(help: ArgumentHelp("Number of CPUs (decimal, e.g. 1.5).", valueName: "decimal"))
    var cpus: String?
    @Option(name: [.customShort("c"), .customLong("cpu-shares")], help: ArgumentHelp("CPU shares (relative weight).", valueName: "int"))
    var cpuShares: Int64?
    @Option(name: .customLong("pids-limit"), help: ArgumentHelp("Tune container pids limit (-1 for unlimited).", valueName: "int"))
    var pidsLimit: Int64?
    @Option(help: ArgumentHelp("Restart policy to apply when a container exits: no, on-failure[:max-retries], always or unless-stopped.", valueName: "string"))
    var restart: String?
    @Argument(help: "Containers (name or ID).") var containers: [String]

    /// POST /containers/{id}/update; absent fields are left as they are.
    struct Body: Encodable {
        var Memory: Int64?
        var MemorySwap: Int64?
        var NanoCpus: Int64?
        var CpuShares: Int64?
        var PidsLimit: Int64?
        var RestartPolicy: RestartPolicyBody?
    }

    func validate() throws {
        if memory == nil, memorySwap == nil, cpus == nil, cpuShares == nil, pidsLimit == nil, restart == nil {
            throw ValidationError("you must provide one or more flags when using this command")
        }
        if containers.isEmpty { throw ValidationError("requires at least 1 argument") }
    }

    func run() throws {
        let body = Body(
            Memory: try memory.map(parseBytes),
            MemorySwap: try memorySwap.map { $0 == "-1" ? -1 : try parseBytes($0) },
            NanoCpus: try cpus.map(parseCPUs),
            CpuShares: cpuShares, PidsLimit: pidsLimit,
            RestartPolicy: try restart.map(RestartPolicyBody.parse))
        let json = try encode(body)
        let client = try daemon()
        try forEachTarget(containers) { name in
            try client.call("POST", "/containers/\(path(name))/update", json: json)
            out(name + "\n")
        }
    }
}
