import ArgumentParser
import CryoClient
import FoundationEssentials
import CryoLinux
import Glibc

/// `cryo stats`: docker stats. A live table redrawn every second (CPU % over that second,
/// from two one-shot samples), or one sample with `--no-stream`. Without names: the running
/// containers (all with `-a`), looked up again at every refresh, as docker does.
struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Display a live stream of containers' resource usage statistics.",
        discussion: """
        CPU % is measured over the last second; MEM USAGE leaves out the page cache the kernel \
        can drop (inactive files), as docker does. With --no-stream one sample is printed and \
        cryo exits. --format json prints one JSON object per container and sample; a Go \
        template takes .Container .Name .ID .CPUPerc .MemUsage .MemPerc .NetIO .BlockIO .PIDs.
        """)
    @Flag(name: .shortAndLong, help: "Show all containers (default shows just running).")
    var all = false
    @Flag(name: .customLong("no-stream"), help: "Disable streaming stats and only pull the first result.")
    var noStream = false
    @Flag(name: .customLong("no-trunc"), help: "Do not truncate output.")
    var noTrunc = false
    @Option(help: ArgumentHelp("Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template.", valueName: "string"))
    var format: String?
    @Argument(help: "Containers (name or ID); none: every running container.") var containers: [String] = []

    func run() throws {
        do {
            let client = try daemon()
            if let t = ListFormat.template(format) { _ = try TemplateOutput.list(t, rows: [], header: .object(Self.header)) }
            let named = !containers.isEmpty
            var previous = try sample(client, targets: try targets(client), named: named)
            usleep(1_000_000)
            let terminal = isatty(1) == 1
            while true {
                let began = Monotonic.now()
                let current = try sample(client, targets: named ? containers : try targets(client), named: named)
                let rows = current.map { cur in
                    cur.sample.fields(previousCPU: previous.first { $0.ref == cur.ref }?.sample.cpu_stats, truncate: !noTrunc)
                }
                if terminal && !noStream { out("\u{1b}[2J\u{1b}[H") }
                try show(rows)
                if noStream { return }
                previous = current
                let left = 1.0 - began.elapsedSeconds
                if left > 0 { usleep(UInt32(left * 1_000_000)) }
            }
        } catch {
            throw fail(error)
        }
    }

    func targets(_ client: DaemonClient) throws -> [String] {
        if !containers.isEmpty { return containers }
        struct Summary: Decodable { var Id: String }
        return try client.get([Summary].self, "/containers/json", query: all ? [("all", "1")] : []).map(\.Id)
    }

    /// One one-shot sample of each target. A named container that is gone is an error; one
    /// of the listed ones that went away meanwhile is left out.
    func sample(_ client: DaemonClient, targets: [String], named: Bool) throws -> [(ref: String, sample: StatsSample)] {
        var out: [(String, StatsSample)] = []
        for t in targets {
            do {
                out.append((t, try client.get(StatsSample.self, "/containers/\(path(t))/stats", query: [("stream", "0"), ("one-shot", "1")])))
            } catch {
                if named { throw error }
            }
        }
        return out
    }

    static let header = TemplateHeader(names: [
        "Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
        "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
    ])

    /// Each row: docker's stats template fields.
    func show(_ rows: [[String: String]]) throws {
        if ListFormat.isJSON(format) {
            for r in rows { out(String(decoding: try encode(r), as: UTF8.self) + "\n") }
        } else if let t = ListFormat.template(format) {
            try ListFormat.printList(t, rows: rows.map { r in TemplateValue.map(r.mapValues { .string($0) }) },
                                     header: .object(Self.header))
        } else {
            out(Format.table([["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]]
                             + rows.map { r in ["ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs"].map { r[$0]! } }))
        }
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

    /// docker's stats template fields (.ID .Container .Name .CPUPerc .MemUsage .MemPerc .NetIO
    /// .BlockIO .PIDs); CPU % over the time since `previousCPU` (default: precpu_stats).
    func fields(previousCPU: CPU?, truncate: Bool) -> [String: String] {
        let pre = previousCPU ?? precpu_stats
        let cpuDelta = Double(cpu_stats.cpu_usage.total_usage) - Double(pre.cpu_usage.total_usage)
        let sysDelta = Double(cpu_stats.system_cpu_usage ?? 0) - Double(pre.system_cpu_usage ?? 0)
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
        let shown = truncate ? Format.shortID(id) : id
        return ["ID": shown, "Container": shown, "Name": name.hasPrefix("/") ? String(name.dropFirst()) : name,
                "CPUPerc": pct(cpu), "MemUsage": Self.binary(mem) + " / " + Self.binary(limit), "MemPerc": pct(memPct),
                "NetIO": Format.size(Int64(rx)) + " / " + Format.size(Int64(tx)),
                "BlockIO": Format.size(Int64(read)) + " / " + Format.size(Int64(write)), "PIDs": "\(pids_stats.current ?? 0)"]
    }

    /// Docker's BytesSize: binary units, three significant digits ("7.5MiB", "64MiB").
    static func binary(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var v = Double(bytes), i = 0
        while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
        return Format.significant(v, 3) + units[i]
    }
}
