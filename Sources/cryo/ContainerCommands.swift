import ArgumentParser
import CryoClient
import FoundationEssentials
import Glibc

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start one or more stopped containers (or restore one from a checkpoint).",
        discussion: """
        Prints each name. With -a (one container) the output is attached and cryo exits with \
        the container's exit code. With --checkpoint NAME the container is restored from \
        that checkpoint (see `cryo checkpoint`) and nothing is printed.
        """)

    @Flag(name: .shortAndLong, help: "Attach STDOUT/STDERR and forward signals.")
    var attach = false

    @Flag(name: .shortAndLong, help: "Attach container's STDIN.")
    var interactive = false

    @Option(help: ArgumentHelp("Restore from this checkpoint.", valueName: "name"))
    var checkpoint: String?

    @Option(name: .customLong("checkpoint-dir"), help: ArgumentHelp("Use a custom checkpoint storage directory.", valueName: "dir"))
    var checkpointDir: String?

    @Argument(help: "Containers (name or ID).")
    var containers: [String]

    func validate() throws {
        if containers.isEmpty { throw ValidationError("\"cryo start\" requires at least 1 argument.") }
        if (attach || interactive) && containers.count > 1 {
            throw ValidationError("you cannot start and attach multiple containers at once")
        }
    }

    var startQuery: [(String, String)] {
        var q: [(String, String)] = []
        if let c = checkpoint { q.append(("checkpoint", c)) }
        if let d = checkpointDir { q.append(("checkpoint-dir", d)) }
        return q
    }

    func run() throws {
        let client = try daemon()
        if attach || interactive {
            try startAttached(client, containers[0])
            return
        }
        try forEachTarget(containers) { name in
            try client.call("POST", "/containers/\(path(name))/start", query: startQuery)
            if checkpoint == nil { out(name + "\n") }
        }
    }

    /// docker start -a: inspect → attach → wait next-exit → start.
    func startAttached(_ client: DaemonClient, _ name: String) throws {
        do {
            let c = try client.get(ContainerInspectJSON.self, "/containers/\(path(name))/json")
            let tty = c.Config?.Tty ?? false
            let p = "/containers/\(c.Id)"
            var q: [(String, String)] = []
            if interactive { q.append(("stdin", "1")) }
            q += [("stdout", "1"), ("stderr", "1"), ("stream", "1")]
            let stream = try client.hijack(p + "/attach", query: q)
            let wait = try client.open("POST", p + "/wait", query: [("condition", "next-exit")])
            try client.call("POST", p + "/start", query: startQuery)
            var forwarder: SignalForwarder?
            if tty {
                if Terminal.isTTY(1) { sendResize(client, p + "/resize") }
            } else {
                forwarder = SignalForwarder(container: c.Id, client: client)
            }
            defer { forwarder?.cancel() }
            try AttachedSession(stream: stream, tty: tty, forwardStdin: interactive).run()
            throw ExitCode(try waitExitCode(fromWait: wait, client: client))
        } catch {
            throw fail(error)
        }
    }
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop one or more running containers (SIGTERM, then SIGKILL after the timeout).",
        discussion: "Prints each name. A container that is already stopped is not an error.")

    @Option(name: [.customShort("t"), .customLong("timeout"), .customLong("time")], help: ArgumentHelp("Seconds to wait before killing the container.", valueName: "int"))
    var timeout: Int?

    @Option(name: .shortAndLong, help: ArgumentHelp("Signal to send to the container.", valueName: "string"))
    var signal: String?

    @Argument(help: "Containers (name or ID).")
    var containers: [String]

    func run() throws {
        let client = try daemon()
        var q: [(String, String)] = []
        if let s = signal { q.append(("signal", s)) }
        if let t = timeout { q.append(("t", String(t))) }
        try forEachTarget(containers) { name in
            try client.call("POST", "/containers/\(path(name))/stop", query: q)
            out(name + "\n")
        }
    }
}

struct Restart: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Restart one or more containers (stop, then start). Prints each name.")

    @Option(name: [.customShort("t"), .customLong("timeout"), .customLong("time")], help: ArgumentHelp("Seconds to wait for stop before killing the container.", valueName: "int"))
    var timeout: Int?

    @Argument(help: "Containers (name or ID).")
    var containers: [String]

    func run() throws {
        let client = try daemon()
        let q: [(String, String)] = timeout.map { [("t", String($0))] } ?? []
        try forEachTarget(containers) { name in
            try client.call("POST", "/containers/\(path(name))/restart", query: q)
            out(name + "\n")
        }
    }
}

struct Kill: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Kill one or more running containers (SIGKILL, or -s SIGNAL). Prints each name.")

    @Option(name: .shortAndLong, help: ArgumentHelp("Signal to send (name like HUP or SIGHUP, or number).", valueName: "string"))
    var signal: String?

    @Argument(help: "Containers (name or ID).")
    var containers: [String]

    func run() throws {
        let client = try daemon()
        let q: [(String, String)] = signal.map { [("signal", $0)] } ?? []
        try forEachTarget(containers) { name in
            try client.call("POST", "/containers/\(path(name))/kill", query: q)
            out(name + "\n")
        }
    }
}

struct Pause: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Pause (freeze) all processes within one or more containers. Prints each name.")
    @Argument(help: "Containers (name or ID).") var containers: [String]
    func run() throws {
        let client = try daemon()
        try forEachTarget(containers) { name in
            try client.call("POST", "/containers/\(path(name))/pause")
            out(name + "\n")
        }
    }
}

struct Unpause: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Unpause (thaw) all processes within one or more containers. Prints each name.")
    @Argument(help: "Containers (name or ID).") var containers: [String]
    func run() throws {
        let client = try daemon()
        try forEachTarget(containers) { name in
            try client.call("POST", "/containers/\(path(name))/unpause")
            out(name + "\n")
        }
    }
}

struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove one or more containers. Prints each name.",
        discussion: "A running container is refused (409) unless -f, which kills it first.")

    @Flag(name: .shortAndLong, help: "Force the removal of a running container (uses SIGKILL).")
    var force = false

    @Flag(name: .shortAndLong, help: "Remove the anonymous volumes of the container.")
    var volumes = false

    @Argument(help: "Containers (name or ID).")
    var containers: [String]

    func run() throws {
        let client = try daemon()
        var q: [(String, String)] = []
        if volumes { q.append(("v", "1")) }
        if force { q.append(("force", "1")) }
        try forEachTarget(containers) { name in
            try client.call("DELETE", "/containers/\(path(name))", query: q)
            out(name + "\n")
        }
    }
}

struct PS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps",
        abstract: "List containers (running ones; -a for all).",
        discussion: """
            --format json prints one JSON object per container and line, like docker's; \
            --format TEMPLATE takes docker's Go templates ('{{.Names}} {{.Status}}', \
            'table {{.ID}}\\t{{.Names}}').
            """)

    @Flag(name: .shortAndLong, help: "Show all containers (default shows just running).")
    var all = false

    @Flag(name: .shortAndLong, help: "Only display container IDs.")
    var quiet = false

    @Flag(name: .customLong("no-trunc"), help: "Don't truncate output.")
    var noTrunc = false

    @Option(name: .long, help: ArgumentHelp("Output format: table (default), json, or a Go template as docker's.", valueName: "string"))
    var format: String?

    func run() throws {
        do {
            let client = try daemon()
            let list = try client.get([ContainerSummaryJSON].self, "/containers/json", query: all ? [("all", "1")] : [])
            ListFormat.warnIfQuiet(format, quiet: quiet)
            if quiet {
                for c in list { out((noTrunc ? c.Id : Format.shortID(c.Id)) + "\n") }
                return
            }
            let t = now()
            if let template = ListFormat.template(format) {
                let rows = list.map { TemplateValue.object(ContainerContext($0, truncate: !noTrunc, now: t)) }
                try ListFormat.printList(template, rows: rows, header: ContainerContext.header)
                return
            }
            if ListFormat.isJSON(format) {
                for c in list { out(String(decoding: try psJSON(c, now: t), as: UTF8.self) + "\n") }
                return
            }
            var rows = [["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]]
            for c in list {
                let cmd = c.Command ?? ""
                rows.append([
                    noTrunc ? c.Id : Format.shortID(c.Id),
                    image(c),
                    "\"" + (noTrunc ? cmd : Format.ellipsis(cmd, 20)) + "\"",
                    created(c, now: t),
                    c.Status ?? "",
                    Format.ports(c.Ports ?? []),
                    names(c),
                ])
            }
            out(Format.table(rows))
        } catch {
            throw fail(error)
        }
    }

    func image(_ c: ContainerSummaryJSON) -> String {
        let i = c.Image ?? ""
        return i.hasPrefix("sha256:") ? Format.shortID(i) : i
    }

    func names(_ c: ContainerSummaryJSON) -> String {
        (c.Names ?? []).map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 }.joined(separator: ",")
    }

    func created(_ c: ContainerSummaryJSON, now: Double) -> String {
        guard let t = c.Created, t > 0 else { return "" }
        return Format.duration(seconds: now - Double(t)) + " ago"
    }

    /// docker ps --format json's keys.
    func psJSON(_ c: ContainerSummaryJSON, now: Double) throws -> [UInt8] {
        struct Line: Encodable {
            var Command: String
            var CreatedAt: String
            var ID: String
            var Image: String
            var Labels: String
            var LocalVolumes: String
            var Mounts: String
            var Names: String
            var Networks: String
            var Ports: String
            var RunningFor: String
            var Size: String
            var State: String
            var Status: String
        }
        let labels = (c.Labels ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        return try encode(Line(
            Command: "\"" + (noTrunc ? (c.Command ?? "") : Format.ellipsis(c.Command ?? "", 20)) + "\"",
            CreatedAt: c.Created.map(localTime) ?? "", ID: noTrunc ? c.Id : Format.shortID(c.Id), Image: image(c),
            Labels: labels, LocalVolumes: "0", Mounts: "", Names: names(c), Networks: "", Ports: Format.ports(c.Ports ?? []),
            RunningFor: created(c, now: now), Size: "", State: c.State ?? "", Status: c.Status ?? ""))
    }
}

/// docker's CreatedAt: "2025-06-01 12:00:00 +0000 UTC" (local time zone).
func localTime(_ unix: Int64) -> String {
    var t = time_t(unix)
    var tm = tm()
    localtime_r(&t, &tm)
    var buf = [CChar](repeating: 0, count: 64)
    let n = strftime(&buf, buf.count, "%Y-%m-%d %H:%M:%S %z %Z", &tm)
    return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Return low-level information on containers or images, as a JSON array.",
        discussion: "Each name is looked up as a container, then as an image. Unknown names: \"Error: No such object\", exit 1.")

    @Option(name: .long, help: ArgumentHelp("Only look for this type: container or image.", valueName: "string"))
    var type: String?

    @Option(name: .shortAndLong, help: ArgumentHelp("Format the output with a Go template (docker's), or json.", valueName: "string"))
    var format: String?

    @Argument(help: "Names or IDs.")
    var names: [String]

    func run() throws {
        try ListFormat.checkInspect(format)
        let client = try daemon()
        var found: [[UInt8]] = []
        var missing: [String] = []
        for n in names {
            var body: [UInt8]?
            do {
                if type == nil || type == "container" {
                    body = try lookup(client, "/containers/\(path(n))/json")
                }
                if body == nil && (type == nil || type == "image") {
                    body = try lookup(client, "/images/\(n)/json")
                }
            } catch {
                throw fail(error)
            }
            if let b = body { found.append(b) } else { missing.append(n) }
        }
        try ListFormat.printInspect(format, items: found)
        for m in missing { err("Error: No such object: \(m)\n") }
        if !missing.isEmpty { throw ExitCode(1) }
    }

    func lookup(_ client: DaemonClient, _ p: String) throws -> [UInt8]? {
        do {
            return trimmed(try client.call("GET", p).body)
        } catch let e as ClientError where e.isNotFound {
            return nil
        }
    }
}

func trimmed(_ b: [UInt8]) -> [UInt8] {
    var b = b
    while let l = b.last, l == 0x0a || l == 0x20 || l == 0x0d { b.removeLast() }
    return b
}

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch the logs of a container (stdout to stdout, stderr to stderr).",
        discussion: "With -f the output follows until the container stops (or Ctrl-C).")

    @Flag(name: .shortAndLong, help: "Follow log output.")
    var follow = false

    @Option(name: [.customShort("n"), .long], help: ArgumentHelp("Number of lines to show from the end of the logs (or \"all\").", valueName: "string"))
    var tail = "all"

    @Flag(name: .shortAndLong, help: "Show timestamps.")
    var timestamps = false

    @Option(help: ArgumentHelp("Show logs since a Unix timestamp (seconds).", valueName: "string"))
    var since: String?

    @Argument(help: "The container (name or ID).")
    var container: String

    func run() throws {
        do {
            let client = try daemon()
            let c = try client.get(ContainerInspectJSON.self, "/containers/\(path(container))/json")
            var q: [(String, String)] = [("stderr", "1"), ("stdout", "1"), ("tail", tail)]
            if follow { q.append(("follow", "1")) }
            if timestamps { q.append(("timestamps", "1")) }
            if let s = since { q.append(("since", s)) }
            let s = try client.open("GET", "/containers/\(c.Id)/logs", query: q)
            defer { s.close() }
            var sink = OutputSink(tty: c.Config?.Tty ?? false)
            try sink.pump { try s.read() }
        } catch {
            throw fail(error)
        }
    }
}

struct Wait: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Block until one or more containers stop, then print their exit codes.")

    @Argument(help: "Containers (name or ID).")
    var containers: [String]

    func run() throws {
        let client = try daemon()
        try forEachTarget(containers) { name in
            let s = try client.open("POST", "/containers/\(path(name))/wait")
            let body = try s.readAll()
            s.close()
            let r = try client.decode(WaitResponseJSON.self, body, what: "wait")
            out("\(r.StatusCode)\n")
        }
    }
}

struct Attach: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Attach local standard input, output, and error streams to a running container.",
        discussion: "Exits with the container's exit code when it stops. Signals are forwarded unless --sig-proxy=false or a tty.")

    @Flag(name: .customLong("no-stdin"), help: "Do not attach STDIN.")
    var noStdin = false

    @Option(name: .customLong("sig-proxy"), help: ArgumentHelp("Proxy all received signals to the process (true/false).", valueName: "bool"))
    var sigProxy = "true"

    @Argument(help: "The container (name or ID).")
    var container: String

    func run() throws {
        do {
            let client = try daemon()
            // docker attach: wait (not-running) → inspect → attach.
            let wait = try client.open("POST", "/containers/\(path(container))/wait")
            let c = try client.get(ContainerInspectJSON.self, "/containers/\(path(container))/json")
            guard c.State?.Running ?? false else {
                wait.close()
                throw ClientError.usage("You cannot attach to a stopped container, start it first")
            }
            let tty = c.Config?.Tty ?? false
            let stdin = !noStdin && (c.Config?.OpenStdin ?? false)
            var q: [(String, String)] = []
            if stdin { q.append(("stdin", "1")) }
            q += [("stdout", "1"), ("stderr", "1"), ("stream", "1")]
            let stream = try client.hijack("/containers/\(c.Id)/attach", query: q)
            if tty && Terminal.isTTY(1) { sendResize(client, "/containers/\(c.Id)/resize") }
            var forwarder: SignalForwarder?
            if !tty && !["false", "0"].contains(sigProxy.lowercased()) {
                forwarder = SignalForwarder(container: c.Id, client: client)
            }
            defer { forwarder?.cancel() }
            try AttachedSession(stream: stream, tty: tty, forwardStdin: stdin).run()
            throw ExitCode(try waitExitCode(fromWait: wait, client: client))
        } catch {
            throw fail(error)
        }
    }
}

struct Port: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List port mappings or a specific mapping for the container.",
        discussion: """
        Prints "80/tcp -> 0.0.0.0:8080" per published port, or with PRIVATE_PORT[/PROTO] only \
        its host addresses; a port that is not published: exit 1.
        """)

    @Argument(help: "The container.") var container: String
    @Argument(help: "A container port: PORT[/tcp|udp].") var privatePort: String?

    func run() throws {
        let c: ContainerInspectJSON
        do {
            c = try daemon().get(ContainerInspectJSON.self, "/containers/\(path(container))/json")
        } catch {
            throw fail(error)
        }
        let ports = (c.NetworkSettings?.Ports ?? [:]).compactMapValues { $0 }
        func order(_ k: String) -> (Int, String) {
            let p = k.split(separator: "/")
            return (Int(p.first ?? "") ?? 0, p.count > 1 ? String(p[1]) : "tcp")
        }
        func host(_ b: ContainerInspectJSON.NetworkSettings.Binding) -> String {
            "\(b.HostIp.flatMap { $0.isEmpty ? nil : $0 } ?? "0.0.0.0"):\(b.HostPort ?? "")"
        }
        if let want = privatePort {
            let key = want.contains("/") ? want.lowercased() : want + "/tcp"
            guard let list = ports[key], !list.isEmpty else {
                err("Error: No public port '\(key)' published for \(container)\n")
                throw ExitCode(1)
            }
            for b in list { out(host(b) + "\n") }
            return
        }
        for key in ports.keys.sorted(by: { order($0) < order($1) }) {
            for b in ports[key] ?? [] { out("\(key) -> \(host(b))\n") }
        }
    }
}
