import ArgumentParser
import CryoClient
import FoundationEssentials
import Glibc

/// The flags `run` and `create` share (docker's names). `-h` is --hostname, as in docker;
/// help is `--help` only for these commands.
struct ContainerFlags: ParsableArguments {
    @Option(help: "Assign a name to the container.")
    var name: String?

    @Flag(name: .shortAndLong, help: "Keep STDIN open even if not attached.")
    var interactive = false

    @Flag(name: .shortAndLong, help: "Allocate a pseudo-TTY.")
    var tty = false

    @Flag(name: .customLong("rm"), help: "Automatically remove the container when it exits (HostConfig.AutoRemove).")
    var autoRemove = false

    @Option(name: .shortAndLong, help: ArgumentHelp("Set environment variables (NAME=VALUE, or NAME to copy it from here).", valueName: "list"))
    var env: [String] = []

    @Option(name: .shortAndLong, help: ArgumentHelp("Working directory inside the container.", valueName: "string"))
    var workdir: String?

    @Option(help: ArgumentHelp("Overwrite the default ENTRYPOINT of the image (\"\" resets it).", valueName: "string"))
    var entrypoint: String?

    @Option(name: .shortAndLong, help: ArgumentHelp("Bind mount a host path or a volume: /host/path:/container/path[:ro], NAME:/container/path[:ro,nocopy], or /container/path (an anonymous volume).", valueName: "list"))
    var volume: [String] = []

    @Option(help: ArgumentHelp("Attach a volume or bind mount: type=volume|bind,source=NAME|/path,target=/path[,readonly][,volume-nocopy][,volume-label=K=V].", valueName: "mount"))
    var mount: [String] = []

    @Option(name: .shortAndLong, help: ArgumentHelp("Memory limit (bytes, or with a unit: 64m, 1g).", valueName: "bytes"))
    var memory: String?

    @Option(help: ArgumentHelp("Number of CPUs (decimal, e.g. 1.5).", valueName: "decimal"))
    var cpus: String?

    @Option(name: .customLong("pids-limit"), help: ArgumentHelp("Tune container pids limit (-1 for unlimited).", valueName: "int"))
    var pidsLimit: Int64?

    @Option(name: [.customShort("h"), .long], help: ArgumentHelp("Container host name.", valueName: "string"))
    var hostname: String?

    @Option(name: [.customLong("network"), .customLong("net")], help: ArgumentHelp("Connect a container to a network: a network name or ID, bridge (cryo0, the default), none or host.", valueName: "network"))
    var network: String?

    @Option(name: .customLong("ip"), help: ArgumentHelp("IPv4 address (e.g., 198.19.5.10) on the container's network.", valueName: "string"))
    var ip: String?

    @Option(name: .customLong("mac-address"), help: ArgumentHelp("Container MAC address (e.g., 02:42:c6:12:00:05), kept across restores.", valueName: "string"))
    var macAddress: String?

    @Option(name: .shortAndLong, help: ArgumentHelp("Publish a container's port(s) to the host: [[HOST_IP:]HOST_PORT:]CONTAINER_PORT[/udp] (no host port: a free one).", valueName: "list"))
    var publish: [String] = []

    @Flag(name: [.customShort("P"), .customLong("publish-all")], help: "Publish all exposed ports to random ports.")
    var publishAll = false

    @Option(help: ArgumentHelp("Expose a port without publishing it: PORT[/udp] (-P publishes it).", valueName: "list"))
    var expose: [String] = []

    @Option(name: .shortAndLong, help: ArgumentHelp("Username or UID (format: <name|uid>[:<group|gid>]).", valueName: "string"))
    var user: String?

    @Option(name: .customLong("cap-add"), help: ArgumentHelp("Add Linux capabilities (ALL: every one the host has).", valueName: "list"))
    var capAdd: [String] = []

    @Option(name: .customLong("cap-drop"), help: ArgumentHelp("Drop Linux capabilities (ALL: every one).", valueName: "list"))
    var capDrop: [String] = []

    @Option(name: .customLong("security-opt"), help: ArgumentHelp("Security options: no-new-privileges[:true|false], seccomp=unconfined|PROFILE.json, systempaths=unconfined, apparmor=unconfined, label=disable.", valueName: "list"))
    var securityOpt: [String] = []

    @Option(name: .customLong("device"), help: ArgumentHelp("Add a host device to the container: HOST[:CONTAINER][:rwm].", valueName: "list"))
    var device: [String] = []

    @Flag(help: "Give extended privileges to this container (every capability the host has, all devices, no seccomp, no masked paths).")
    var privileged = false

    @Flag(name: .customLong("init"), help: "Run an init inside the container as PID 1 that forwards signals and reaps processes.")
    var initProcess = false

    @Option(help: ArgumentHelp("Restart policy to apply when the container exits: no, on-failure[:max-retries], always or unless-stopped.", valueName: "string"))
    var restart: String?

    @Option(name: .customLong("pid"), help: ArgumentHelp("PID namespace to use: host, or the container's own (default).", valueName: "string"))
    var pid = ""

    @Option(name: .customLong("ipc"), help: ArgumentHelp("IPC mode to use: private (default), shareable, none or host.", valueName: "string"))
    var ipc = ""

    @Option(name: .customLong("uts"), help: ArgumentHelp("UTS namespace to use: host, or the container's own (default).", valueName: "string"))
    var uts = ""

    @Option(name: .customLong("cgroupns"), help: ArgumentHelp("Cgroup namespace to use: host or private (default).", valueName: "string"))
    var cgroupns = ""

    @Option(name: .customLong("userns"), help: ArgumentHelp("User namespace to use: host (the only one cryo offers).", valueName: "string"))
    var userns = ""

    @Option(name: .customLong("health-cmd"), help: ArgumentHelp("Command to run to check health (in the container, with /bin/sh -c).", valueName: "string"))
    var healthCmd: String?

    @Option(name: .customLong("health-interval"), help: ArgumentHelp("Time between running the check (ms|s|m|h) (default 30s).", valueName: "duration"))
    var healthInterval: String?

    @Option(name: .customLong("health-timeout"), help: ArgumentHelp("Maximum time to allow one check to run (ms|s|m|h) (default 30s); a check that runs longer is killed and fails.", valueName: "duration"))
    var healthTimeout: String?

    @Option(name: .customLong("health-retries"), help: ArgumentHelp("Consecutive failures needed to report unhealthy (default 3).", valueName: "int"))
    var healthRetries: Int?

    @Option(name: .customLong("health-start-period"), help: ArgumentHelp("Start period for the container to initialize before failures count (ms|s|m|h) (default 0s).", valueName: "duration"))
    var healthStartPeriod: String?

    @Option(name: .customLong("health-start-interval"), help: ArgumentHelp("Time between running the check during the start period (ms|s|m|h) (default 5s).", valueName: "duration"))
    var healthStartInterval: String?

    @Flag(name: .customLong("no-healthcheck"), help: "Disable any container-specified HEALTHCHECK.")
    var noHealthcheck = false

    func options(image: String, command: [String], detach: Bool, isRun: Bool) -> ContainerOptions {
        var o = ContainerOptions()
        o.image = image
        o.command = command
        o.name = name
        o.detach = detach
        o.interactive = interactive
        o.tty = tty
        o.autoRemove = autoRemove
        o.env = env
        o.workdir = workdir
        o.entrypoint = entrypoint
        o.volumes = volume
        o.mounts = mount
        o.memory = memory
        o.cpus = cpus
        o.pidsLimit = pidsLimit
        o.hostname = hostname
        o.network = network
        o.ip = ip
        o.macAddress = macAddress
        o.publish = publish
        o.publishAll = publishAll
        o.expose = expose
        o.user = user
        o.capAdd = capAdd
        o.capDrop = capDrop
        o.securityOpt = securityOpt
        o.devices = device
        o.privileged = privileged
        o.pid = pid
        o.ipc = ipc
        o.uts = uts
        o.cgroupns = cgroupns
        o.userns = userns
        o.initProcess = initProcess
        o.restart = restart
        o.health.cmd = healthCmd
        o.health.interval = healthInterval
        o.health.timeout = healthTimeout
        o.health.retries = healthRetries
        o.health.startPeriod = healthStartPeriod
        o.health.startInterval = healthStartInterval
        o.health.disabled = noHealthcheck
        o.isRun = isRun
        if tty, Terminal.isTTY(1) || Terminal.isTTY(0) { o.consoleSize = Terminal.size(1) ?? Terminal.size(0) }
        return o
    }
}

/// POST /containers/create; a 404 for the image prints docker's "Unable to find image".
func createContainer(_ client: DaemonClient, _ o: ContainerOptions) throws -> String {
    let body = try CreateBody.build(o, environment: ProcessInfo.processInfo.environment).encoded()
    var query: [(String, String)] = []
    if let n = o.name { query.append(("name", n)) }
    do {
        let r = try client.call("POST", "/containers/create", query: query, json: body)
        let created = try client.decode(CreateResponseJSON.self, r.body, what: "create")
        for w in created.Warnings ?? [] where !w.isEmpty { err("WARNING: \(w)\n") }
        return created.Id
    } catch let e as ClientError where e.isNotFound {
        if case .daemon(_, let m) = e, m.contains("No such image") {
            let (repo, tag) = Format.splitReference(o.image)
            err("Unable to find image '\(repo):\(tag)' locally\n")
            throw ClientError.daemon(status: 404, message: m + " (pull it with `cryo pull`, or load it with `cryo load -i FILE`)")
        }
        throw e
    }
}

/// The exit status of `run` when the start failed: 127 for a command that does not exist,
/// 126 for one that cannot be executed (as docker's), 125 for anything else. cryod records
/// which it was, from the errno of the command's exec, as the exit code of the container
/// whose start failed; an auto-removed container's is in its wait response, already
/// complete then.
func startErrorCode(_ client: DaemonClient, _ path: String, wait: ResponseStream?) -> Int32 {
    var code: Int32?
    if let r = try? client.call("GET", path + "/json") {
        if let c = try? client.decode(ContainerInspectJSON.self, r.body, what: "inspect"), c.State?.Status == "exited" {
            code = c.State?.ExitCode
        }
    } else if let wait, let body = try? wait.readAll() {
        code = (try? client.decode(WaitResponseJSON.self, body, what: "wait"))?.StatusCode
    }
    return code == 126 || code == 127 ? code! : 125
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create and run a new container from an image.",
        discussion: """
        As docker run: create → attach (unless -d) → wait → start. Without -d the \
        container's stdout and stderr are copied to ours (separately, unless -t), signals \
        are forwarded as `kill` (unless -t), and cryo exits with the container's exit code. \
        With -d the container's ID is printed. Errors before the container runs exit 125 \
        (126/127 when the command cannot be run). A missing image is an error, as with \
        `docker run --pull=never` (pull it first with `cryo pull`, or load it with `cryo load`).
        """,
        helpNames: [.long])

    @OptionGroup var flags: ContainerFlags

    @Flag(name: .shortAndLong, help: "Run container in background and print container ID.")
    var detach = false

    @Argument(help: "The image (name[:tag] or ID).")
    var image: String

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.")
    var command: [String] = []

    func run() throws {
        if flags.tty && flags.interactive && !detach && !Terminal.isTTY(0) {
            err("the input device is not a TTY\n")
            throw ExitCode(1)
        }
        let o = flags.options(image: image, command: command, detach: detach, isRun: true)
        let client: DaemonClient
        let id: String
        do {
            client = try daemon()
            id = try createContainer(client, o)
        } catch {
            throw failRun(error, command: "run")
        }
        let path = "/containers/\(id)"
        if detach {
            // docker opens the wait too (and abandons it when it exits).
            let wait = try? client.open("POST", path + "/wait", query: [("condition", o.autoRemove ? "removed" : "next-exit")])
            do {
                try client.call("POST", path + "/start")
            } catch {
                throw failRun(error, command: "run", code: startErrorCode(client, path, wait: wait))
            }
            wait?.close()
            out(id + "\n")
            return
        }
        var query: [(String, String)] = []
        if o.interactive { query.append(("stdin", "1")) }
        query += [("stdout", "1"), ("stderr", "1"), ("stream", "1")]
        let stream: HijackedStream
        let wait: ResponseStream
        do {
            stream = try client.hijack(path + "/attach", query: query)
            wait = try client.open("POST", path + "/wait", query: [("condition", o.autoRemove ? "removed" : "next-exit")])
        } catch {
            throw failRun(error, command: "run")
        }
        do {
            try client.call("POST", path + "/start")
        } catch {
            stream.close()
            let code = startErrorCode(client, path, wait: wait)
            if o.autoRemove { _ = try? client.call("DELETE", path, query: [("force", "1")]) }
            throw failRun(error, command: "run", code: code)
        }
        var forwarder: SignalForwarder?
        if o.tty {
            if Terminal.isTTY(1) {
                sendResize(client, path + "/resize")
                forwarder = SignalForwarder { sendResize(client, path + "/resize") }
            }
        } else {
            forwarder = SignalForwarder(container: id, client: client)
        }
        defer { forwarder?.cancel() }
        do {
            try AttachedSession(stream: stream, tty: o.tty, forwardStdin: o.interactive).run()
        } catch {
            err("cryo: \(errorText(error))\n")
        }
        let code = try waitExitCode(fromWait: wait, client: client)
        throw ExitCode(code)
    }
}

struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a new container (without starting it); prints its ID.",
        discussion: "Takes run's flags (except -d). Start it with `cryo start [-a] CONTAINER`.",
        helpNames: [.long])

    @OptionGroup var flags: ContainerFlags

    @Argument(help: "The image (name[:tag] or ID).")
    var image: String

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.")
    var command: [String] = []

    func run() throws {
        let o = flags.options(image: image, command: command, detach: false, isRun: false)
        do {
            let id = try createContainer(try daemon(), o)
            out(id + "\n")
        } catch {
            throw failRun(error, command: "create")
        }
    }
}
