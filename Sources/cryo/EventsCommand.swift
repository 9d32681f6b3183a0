import ArgumentParser
import CryoClient
import FoundationEssentials
import Glibc

/// `docker events`: cryod's events as they happen (and the past ones within --since/--until).
struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Get real time events from cryod.",
        discussion: """
        Container (create, start, die, stop, kill, pause, unpause, rename, restart, destroy, \
        checkpoint, restore, commit), image (pull, push, tag, untag, delete, load, import), \
        network (create, destroy) and volume (create, destroy) events, as dockerd writes them. \
        cryod keeps the last 1000; --since shows those from then on, --until ends the stream. \
        A client too slow to keep up has its stream closed rather than given gaps.
        """)

    @Option(help: ArgumentHelp("Show events created since this time (unix seconds, RFC 3339, or a duration such as 10m).", valueName: "string"))
    var since: String?

    @Option(help: ArgumentHelp("Stream events until this time.", valueName: "string"))
    var until: String?

    @Option(name: [.customShort("f"), .customLong("filter")], help: ArgumentHelp("Filter: type=, event=, container=, image=, label=, network=, volume=, scope= (repeatable).", valueName: "filter"))
    var filters: [String] = []

    @Option(name: .long, help: ArgumentHelp("json, or a Go template as docker's (.Type, .Action, .Actor.ID, .Actor.Attributes, .time, .timeNano).", valueName: "string"))
    var format: String?

    func run() throws {
        do {
            var q = try pruneQuery(filters)
            if let since { q.append(("since", since)) }
            if let until { q.append(("until", until)) }
            let template = ListFormat.template(format)
            if let template { try ListFormat.checkInspect(template) }
            let s = try daemon().open("GET", "/events", query: q)
            defer { s.close() }
            try s.forEachLine { line in
                guard !line.isEmpty else { return }
                if ListFormat.isJSON(format) { return out(line + "\n") }
                if let template { return try ListFormat.printInspect(template, items: [Array(line.utf8)]) }
                out(Self.text(line) + "\n")
            }
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail(error)
        }
    }

    /// docker's line: `TIME TYPE ACTION ID (k=v, …)`, the time in RFC 3339 with nanoseconds.
    static func text(_ line: String) -> String {
        struct E: Decodable {
            struct A: Decodable { var ID: String; var Attributes: [String: String]? }
            var `Type`: String
            var Action: String
            var Actor: A
            var timeNano: Int64
        }
        guard let e = try? JSONDecoder().decode(E.self, from: Data(line.utf8)) else { return line }
        let attrs = (e.Actor.Attributes ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
        return "\(Format.rfc3339Nano(e.timeNano)) \(e.Type) \(e.Action) \(e.Actor.ID)" + (attrs.isEmpty ? "" : " (\(attrs))")
    }
}
