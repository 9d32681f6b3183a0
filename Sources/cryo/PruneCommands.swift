import ArgumentParser
import CryoClient
import FoundationEssentials

/// `--filter name=value` options as the prune endpoints take them (`{"name":{"value":true}}`).
func pruneQuery(_ filters: [String], extra: [String: String] = [:]) throws -> [(String, String)] {
    var f: [String: [String: Bool]] = [:]
    for spec in filters {
        let kv = spec.split(separator: "=", maxSplits: 1).map(String.init)
        guard kv.count == 2 else { throw ValidationError("bad format of filter (expected name=value): \(spec)") }
        f[kv[0], default: [:]][kv[1]] = true
    }
    for (k, v) in extra where f[k] == nil { f[k] = [v: true] }
    return f.isEmpty ? [] : [("filters", String(decoding: try encode(f), as: UTF8.self))]
}

/// What one prune endpoint removed: the lines docker prints and the bytes reclaimed.
struct PruneResult {
    var section: String
    var lines: [String]
    var reclaimed: UInt64

    var text: String { lines.isEmpty ? "" : "\(section):\n" + lines.map { $0 + "\n" }.joined() + "\n" }

    static func containers(_ client: DaemonClient, _ q: [(String, String)]) throws -> PruneResult {
        struct R: Decodable { var ContainersDeleted: [String]?; var SpaceReclaimed: UInt64 }
        let r = try client.decode(R.self, try client.call("POST", "/containers/prune", query: q).body, what: "container prune")
        return PruneResult(section: "Deleted Containers", lines: r.ContainersDeleted ?? [], reclaimed: r.SpaceReclaimed)
    }

    static func images(_ client: DaemonClient, _ q: [(String, String)]) throws -> PruneResult {
        struct R: Decodable { var ImagesDeleted: [ImageDeleteJSON]?; var SpaceReclaimed: UInt64 }
        let r = try client.decode(R.self, try client.call("POST", "/images/prune", query: q).body, what: "image prune")
        let lines = (r.ImagesDeleted ?? []).map { $0.Untagged.map { "untagged: " + $0 } ?? "deleted: " + ($0.Deleted ?? "") }
        return PruneResult(section: "Deleted Images", lines: lines, reclaimed: r.SpaceReclaimed)
    }

    static func volumes(_ client: DaemonClient, _ q: [(String, String)]) throws -> PruneResult {
        struct R: Decodable { var VolumesDeleted: [String]?; var SpaceReclaimed: UInt64 }
        let r = try client.decode(R.self, try client.call("POST", "/volumes/prune", query: q).body, what: "volume prune")
        return PruneResult(section: "Deleted Volumes", lines: r.VolumesDeleted ?? [], reclaimed: r.SpaceReclaimed)
    }

    static func networks(_ client: DaemonClient, _ q: [(String, String)]) throws -> PruneResult {
        struct R: Decodable { var NetworksDeleted: [String]? }
        let r = try client.decode(R.self, try client.call("POST", "/networks/prune", query: q).body, what: "network prune")
        return PruneResult(section: "Deleted Networks", lines: r.NetworksDeleted ?? [], reclaimed: 0)
    }
}

struct ContainerPrune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune", abstract: "Remove all stopped containers (docker's until and label filters).")
    @Flag(name: .shortAndLong, help: "Do not prompt for confirmation (cryo never prompts).") var force = false
    @Option(name: .customLong("filter"), help: ArgumentHelp("Filter: until=<timestamp|duration>, label=<key>[=<value>], label!=…", valueName: "filter"))
    var filters: [String] = []
    func run() throws {
        do {
            let r = try PruneResult.containers(try daemon(), try pruneQuery(filters))
            out(r.text + "Total reclaimed space: \(Format.size(Int64(r.reclaimed)))\n")
        } catch { throw fail(error) }
    }
}

struct ImagePrune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove unused images: untagged ones, or with -a every image no container uses.")
    @Flag(name: .shortAndLong, help: "Remove all unused images, not just dangling ones.") var all = false
    @Flag(name: .shortAndLong, help: "Do not prompt for confirmation (cryo never prompts).") var force = false
    @Option(name: .customLong("filter"), help: ArgumentHelp("Filter: until=<timestamp|duration>, label=<key>[=<value>], label!=…", valueName: "filter"))
    var filters: [String] = []
    func run() throws {
        do {
            let r = try PruneResult.images(try daemon(), try pruneQuery(filters, extra: ["dangling": all ? "false" : "true"]))
            out(r.text + "Total reclaimed space: \(Format.size(Int64(r.reclaimed)))\n")
        } catch { throw fail(error) }
    }
}

struct NetworkPrune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune", abstract: "Remove every network no container refers to (the default network stays).")
    @Flag(name: .shortAndLong, help: "Do not prompt for confirmation (cryo never prompts).") var force = false
    @Option(name: .customLong("filter"), help: ArgumentHelp("Filter: until=<timestamp|duration>, label=<key>[=<value>], label!=…", valueName: "filter"))
    var filters: [String] = []
    func run() throws {
        do { out(try PruneResult.networks(try daemon(), try pruneQuery(filters)).text) } catch { throw fail(error) }
    }
}

struct SystemPrune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove stopped containers, unused networks and dangling images (with -a: every unused image).")
    @Flag(name: .shortAndLong, help: "Remove all unused images, not just dangling ones.") var all = false
    @Flag(name: .shortAndLong, help: "Do not prompt for confirmation (cryo never prompts).") var force = false
    @Flag(help: "Prune anonymous volumes too.") var volumes = false
    @Option(name: .customLong("filter"), help: ArgumentHelp("Filter: until=<timestamp|duration>, label=<key>[=<value>], label!=…", valueName: "filter"))
    var filters: [String] = []
    func run() throws {
        do {
            let client = try daemon()
            let q = try pruneQuery(filters)
            var results = [try PruneResult.containers(client, q), try PruneResult.networks(client, q)]
            if volumes { results.append(try PruneResult.volumes(client, q)) }
            results.append(try PruneResult.images(client, try pruneQuery(filters, extra: ["dangling": all ? "false" : "true"])))
            out(results.map(\.text).joined() + "Total reclaimed space: \(Format.size(Int64(results.reduce(0) { $0 + $1.reclaimed })))\n")
        } catch { throw fail(error) }
    }
}
