import CryoLinux
import CryoOCI
import CryoRuntime
import FoundationEssentials
import Glibc

// Fast path: the container init is this same binary, re-exec'd.
if CommandLine.arguments.count >= 3 && CommandLine.arguments[1] == "init" {
    ContainerInit.main(syncFD: Int32(CommandLine.arguments[2]) ?? 3)
}

Trace.mark("main")
let program = "cryo-runtime"
let version = "0.1.0"

func fail(_ message: String, code: Int32 = 1) -> Never {
    RuntimeLog.reportFailure(message)
    exit(code)
}

func printJSON<T: Encodable>(_ value: T, pretty: Bool = true) {
    let enc = JSONEncoder()
    enc.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
    guard let data = try? enc.encode(value) else { fail("cannot encode output") }
    print(String(decoding: data, as: UTF8.self))
}

let argv = CommandLine.arguments.dropFirst()
let globals: ParsedOptions
var rest: ArraySlice<String>
do {
    (globals, rest) = try CLIParser.parse(argv, options: Commands.globalOptions, commandName: program, stopAtPositional: true)
} catch {
    fail("\(error)")
}
RuntimeLog.bootstrap(logPath: globals.value("log"), fileFormat: globals.value("log-format") ?? "text", debug: globals.has("debug"))
if globals.has("version") { print("\(program) version \(version)\nspec: 1.0.2"); exit(0) }
guard let commandName = rest.first else {
    print(Commands.mainHelp())
    exit(globals.has("help") ? 0 : 1)
}
if commandName == "help" { print(Commands.mainHelp()); exit(0) }
guard let command = Commands.find(commandName) else {
    fail("unknown command \"\(commandName)\" (see '\(program) --help')")
}
if globals.has("systemd-cgroup") { fail("--systemd-cgroup is not supported: cryo-runtime manages cgroups through cgroupfs") }
if let r = globals.value("rootless"), r != "false" { fail("rootless mode is not supported: run cryo-runtime as root") }

let opts: ParsedOptions
do {
    let helpOpt = CLIOption("help", short: "h", "show help")
    (opts, _) = try CLIParser.parse(rest.dropFirst(), options: command.options + [helpOpt], commandName: "\(program) \(command.name)",
                                    passThroughAfter: command.stopAtFirstPositionalAfter)
} catch {
    fail("\(error)")
}
if opts.has("help") { print(CLIParser.help(for: command, program: program)); exit(0) }

let runtime = Runtime(root: globals.value("root") ?? "/run/cryo-runtime")
let criuPath = globals.value("criu") ?? "criu"

func containerID(count: ClosedRange<Int> = 1...1) -> String {
    guard count.contains(opts.positionals.count), let id = opts.positionals.first else {
        fail("\"\(program) \(command.name)\" requires \(count.lowerBound == count.upperBound ? "exactly" : "at least") \(count.lowerBound) argument(s)\nUsage: \(program) \(command.usage)")
    }
    return id
}

func createOptions() -> CreateOptions {
    var o = CreateOptions(bundle: opts.value("bundle") ?? ".")
    o.pidFile = opts.value("pid-file")
    o.consoleSocket = opts.value("console-socket")
    o.noPivot = opts.has("no-pivot")
    if let n = opts.value("preserve-fds") {
        guard let v = Int32(n), v >= 0 else { fail("--preserve-fds must be a non-negative number") }
        o.preserveFDs = v
    }
    return o
}

do {
    switch command.name {
    case "spec":
        let bundle = opts.value("bundle") ?? "."
        let path = bundle + "/config.json"
        if FS.exists(path) { fail("File \(path) exists. Remove it first") }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
        try FS.atomicWrite(path, Array(try enc.encode(Spec.defaultSpec())), mode: 0o644)
    case "create":
        let id = containerID()
        try runtime.create(id: id, createOptions())
    case "start":
        try runtime.start(id: containerID())
    case "run":
        let id = containerID()
        exit(try Foreground.run(runtime: runtime, id: id, createOptions(), detach: opts.has("detach"), keep: opts.has("keep")))
    case "state":
        printJSON(try runtime.state(id: containerID()))
    case "list":
        let list = runtime.list()
        if opts.has("quiet") {
            for c in list { print(c.id) }
        } else if opts.value("format") == "json" {
            printJSON(list, pretty: false)
        } else {
            print("ID".padding(toLength: 20, withPad: " ", startingAt: 0) + " PID      STATUS    BUNDLE" + String(repeating: " ", count: 34) + "CREATED                         OWNER")
            for c in list {
                print("\(c.id.padding(toLength: 20, withPad: " ", startingAt: 0)) \(String(c.pid).padding(toLength: 8, withPad: " ", startingAt: 0)) \(c.status.padding(toLength: 9, withPad: " ", startingAt: 0)) \(c.bundle.padding(toLength: 39, withPad: " ", startingAt: 0)) \(c.created) \(c.owner.isEmpty ? "root" : c.owner)")
            }
        }
    case "kill":
        let id = containerID(count: 1...2)
        let sigText = opts.positionals.count > 1 ? opts.positionals[1] : "SIGTERM"
        guard let sig = Signals.parse(sigText) else { fail("unknown signal \"\(sigText)\"") }
        try runtime.kill(id: id, signal: sig, all: opts.has("all"))
    case "delete":
        let id = containerID()
        do {
            try runtime.delete(id: id, force: opts.has("force"))
        } catch let e as CryoFailure where e.code == .notFound && opts.has("force") {
            // runc: delete --force of a missing container succeeds.
        }
    case "pause":
        try runtime.pause(id: containerID())
    case "resume":
        try runtime.resume(id: containerID())
    case "ps":
        let id = containerID(count: 1...Int.max)
        let pids = try runtime.processes(id: id)
        if opts.value("format") == "json" {
            printJSON(pids, pretty: false)
        } else {
            try PSCommand.printTable(pids: pids, psArgs: Array(opts.positionals.dropFirst()))
        }
    case "exec":
        let id = containerID(count: 1...Int.max)
        let process = try ExecCommand.process(from: opts, runtime: runtime, id: id)
        var eo = ExecOptions()
        eo.detach = opts.has("detach")
        eo.pidFile = opts.value("pid-file")
        eo.consoleSocket = opts.value("console-socket")
        if let n = opts.value("preserve-fds") { eo.preserveFDs = Int32(n) ?? 0 }
        let pid = try runtime.exec(id: id, process: process, eo)
        if eo.detach { exit(0) }
        exit(try Foreground.wait(pid: pid))
    case "checkpoint":
        try CheckpointCommand.checkpoint(runtime: runtime, id: containerID(), opts: opts, criuPath: criuPath)
    case "restore":
        exit(try CheckpointCommand.restore(runtime: runtime, id: containerID(), opts: opts, criuPath: criuPath))
    case "features":
        print(Features.json)
    default:
        fail("command \(command.name) is not implemented")
    }
} catch {
    // exec and run stand for the container's command: one that cannot be run exits
    // 127/126 as a shell's would (cryod's exec reports this status); any other failure is 1.
    let status = ["exec", "run"].contains(command.name) ? CommandExit.status(of: error) ?? 1 : 1
    fail("\(error)", code: status)
}
exit(0)
