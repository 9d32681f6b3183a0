import ArgumentParser
import CryoClient
import FoundationEssentials

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Move a running container to another cryod, with its memory, processes, files and address.",
        discussion: """
        TARGET is the other daemon: tcp://HOST:PORT (both daemons started with --tlsverify and \
        certificates from one CA, see `cryo tls`), or unix:///PATH for a cryod on this machine. \
        The target checks everything first (name, network and subnet, CRIU and CPU, disk space, \
        bind-mounted paths); then the container is frozen here, its pages stream straight to the \
        target's CRIU, its images, writable-layer changes and log follow, the target restores it \
        with its network locked, and only when the target confirms is the copy here removed. \
        Any failure before that leaves it running here, as does a target that stays silent for \
        --timeout seconds while the container is frozen (a hung daemon or a stalled link). With \
        --post-copy the target runs it as soon as everything but the memory has arrived, and the \
        memory follows (on demand and in the background) while the copy here stays frozen; it is \
        removed when the last page has arrived. If the memory stream breaks after that, the \
        target's copy is killed (never left running with missing memory) and the frozen copy here \
        is kept, paused, for you to unpause or remove. Progress goes to stderr; the report \
        (downtime, bytes per kind, time per phase) to stdout, as JSON with --format json. \
        Exit status 0 when the container runs on the target, 1 otherwise.
        """)

    @Flag(name: .customLong("post-copy"), help: "Resume on the target at once and let the memory follow (CRIU lazy pages).")
    var postCopy = false

    @Flag(name: .customLong("tcp-established"), help: "Move established TCP connections too (also by the container's io.cryo.checkpoint.tcp-established label).")
    var tcpEstablished = false

    @Option(name: .long, help: ArgumentHelp("Seconds the target may stay silent while the container is frozen here; then the move is abandoned and the container resumes here.", valueName: "seconds"))
    var timeout: Int = 30

    @Option(name: .long, help: ArgumentHelp("Output format: json prints the report as JSON; a Go template formats it.", valueName: "string"))
    var format: String?

    @Argument(help: "The container.") var container: String
    @Argument(help: "The other cryod: tcp://HOST:PORT or unix:///PATH.") var target: String

    func run() throws {
        var query = [("target", target)]
        if postCopy { query.append(("post-copy", "1")) }
        if tcpEstablished { query.append(("tcp-established", "1")) }
        guard (1...3600).contains(timeout) else { throw ValidationError("--timeout must be from 1 to 3600 seconds") }
        if timeout != 30 { query.append(("timeout", String(timeout))) }
        var report: MigrationReportJSON?
        var failure: String?
        do {
            let s = try daemon().open("POST", "/containers/\(path(container))/migrate", query: query)
            defer { s.close() }
            try s.forEachLine { line in
                guard let e = try? JSONDecoder().decode(MigrationEventJSON.self, from: Data(line.utf8)) else { return }
                if let r = e.report { report = r } else if let x = e.error { failure = x } else if e.phase != "done" {
                    err("\(e.phase): \(e.status)\n")
                }
            }
        } catch {
            throw fail(error)
        }
        if let failure {
            err("Error: \(failure)\n")
            throw ExitCode(1)
        }
        guard let report else {
            err("Error: the daemon ended the migration without a report; check `cryo ps -a` here and on \(target)\n")
            throw ExitCode(1)
        }
        if ListFormat.template(format) != nil {
            let enc = JSONEncoder()
            if try ListFormat.printReport(format, json: Array((try? enc.encode(report)) ?? Data())) { return }
        }
        if ListFormat.isJSON(format) {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            out(String(decoding: (try? enc.encode(report)) ?? Data(), as: UTF8.self) + "\n")
            return
        }
        out(report.summary + "\n")
    }
}

struct MigrationEventJSON: Decodable {
    var phase: String
    var status: String
    var report: MigrationReportJSON?
    var error: String?
}

struct MigrationReportJSON: Codable {
    struct Phase: Codable { var name: String; var ms: Double }
    struct Bytes: Codable { var memory: UInt64; var images: UInt64; var rootfs: UInt64; var layers: UInt64; var log: UInt64; var shm: UInt64?; var volumes: UInt64? }
    var container: String
    var id: String
    var target: String
    var session: String
    var mode: String
    var downtimeMs: Double
    var totalMs: Double
    var phases: [Phase]
    var bytes: Bytes
    var layersSent: Int
    /// Post-copy: from running on the target to its last page there.
    var pagesCompleteMs: Double?
    /// "relayed" or "local socket".
    var pageStream: String?

    var summary: String {
        func tenths(_ x: Double) -> String {
            let t = Int((x * 10).rounded())
            return "\(t / 10).\(t % 10)"
        }
        func size(_ n: UInt64) -> String {
            if n >= 1 << 20 { return tenths(Double(n) / 1_048_576) + " MiB" }
            if n >= 1024 { return tenths(Double(n) / 1024) + " KiB" }
            return "\(n) B"
        }
        let phaseText = phases.map { "\($0.name) \(Int($0.ms.rounded())) ms" }.joined(separator: ", ")
        let total = tenths(totalMs / 1000)
        let downtime = Int(downtimeMs.rounded())
        let layerWord = layersSent == 1 ? "layer" : "layers"
        let via = pageStream.map { " (\($0))" } ?? ""
        let sent = "memory \(size(bytes.memory))\(via), other images \(size(bytes.images)), rootfs changes \(size(bytes.rootfs)), image layers \(size(bytes.layers)) (\(layersSent) \(layerWord)), log \(size(bytes.log)), /dev/shm \(size(bytes.shm ?? 0))\((bytes.volumes ?? 0) > 0 ? ", volumes \(size(bytes.volumes ?? 0))" : "")"
        let pages = pagesCompleteMs.map { "\n  all pages transferred \(tenths($0 / 1000)) s after it resumed on the target (the source's copy was removed then)" } ?? ""
        return "\(container) migrated to \(target) (\(mode)) in \(total) s; downtime \(downtime) ms\(pages)\n  sent: \(sent)\n  phases: \(phaseText)"
    }
}
