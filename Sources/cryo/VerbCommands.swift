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

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Display containers' resource usage: one sample each (as docker stats --no-stream).",
        discussion: "cryo prints one sample (CPU % over one second) and exits; it does not redraw a live table.")
    @Flag(name: .customLong("no-stream"), help: "Print one sample and exit (what cryo stats always does).")
    var noStream = false
    @Argument(help: "Containers (name or ID).") var containers: [String]
    func run() throws {
        let client = try daemon()
        var rows = [["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]]
        try forEachTarget(containers) { name in
            let s = try client.get(StatsSample.self, "/containers/\(path(name))/stats", query: [("stream", "0")])
            rows.append(s.row)
        }
        out(Format.table(rows))
    }
}

/// The fields of Docker's stats JSON that the table shows, computed as the docker CLI does.
struct StatsSample: Decodable {
    struct CPU: Decodable {
        struct Usage: Decodable { var total_usage: UInt64 }
        var cpu_usage: Usage
        var system_cpu_usage: UInt64?
        var online_cpus: UInt32?
    }
    struct Memory: Decodable { var usage: UInt64?; var limit: UInt64?; var stats: [String: UInt64]? }
    struct Net: Decodable { var rx_bytes: UInt64; var tx_bytes: UInt64 }
    struct Blkio: Decodable {
        struct Entry: Decodable { var op: String; var value: UInt64 }
        var io_service_bytes_recursive: [Entry]?
    }
    struct Pids: Decodable { var current: UInt64? }
    var id: String
    var name: String
    var cpu_stats: CPU
    var precpu_stats: CPU
    var memory_stats: Memory
    var networks: [String: Net]?
    var blkio_stats: Blkio
    var pids_stats: Pids

    var row: [String] {
        let cpuDelta = Double(cpu_stats.cpu_usage.total_usage) - Double(precpu_stats.cpu_usage.total_usage)
        let sysDelta = Double(cpu_stats.system_cpu_usage ?? 0) - Double(precpu_stats.system_cpu_usage ?? 0)
        let cpu = cpuDelta > 0 && sysDelta > 0 ? cpuDelta / sysDelta * Double(max(cpu_stats.online_cpus ?? 1, 1)) * 100 : 0
        let usage = memory_stats.usage ?? 0
        let inactive = memory_stats.stats?["total_inactive_file"] ?? memory_stats.stats?["inactive_file"] ?? 0
        let mem = inactive < usage ? usage - inactive : usage
        let limit = memory_stats.limit ?? 0
        let memPct = limit > 0 ? Double(mem) / Double(limit) * 100 : 0
        let rx = (networks ?? [:]).values.reduce(0) { $0 + $1.rx_bytes }, tx = (networks ?? [:]).values.reduce(0) { $0 + $1.tx_bytes }
        var read: UInt64 = 0, write: UInt64 = 0
        for e in blkio_stats.io_service_bytes_recursive ?? [] {
            switch e.op.lowercased() {
            case "read": read += e.value
            case "write": write += e.value
            default: break
            }
        }
        func pct(_ v: Double) -> String { Format.fixed(v, 2) + "%" }
        return [Format.shortID(id), name.hasPrefix("/") ? String(name.dropFirst()) : name, pct(cpu),
                Self.binary(mem) + " / " + Self.binary(limit), pct(memPct),
                Format.size(Int64(rx)) + " / " + Format.size(Int64(tx)),
                Format.size(Int64(read)) + " / " + Format.size(Int64(write)), "\(pids_stats.current ?? 0)"]
    }

    /// Docker's BytesSize: binary units, three significant digits ("7.5MiB", "64MiB").
    static func binary(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var v = Double(bytes), i = 0
        while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
        return Format.significant(v, 3) + units[i]
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
