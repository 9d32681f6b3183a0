import ArgumentParser
import CryoClient
import Glibc

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Execute a command in a running container.",
        discussion: """
        As docker exec: inspect → create the exec → start it (hijacked stream) → read its \
        exit code, which becomes cryo's. With -d it is started in the background.
        """)

    @Flag(name: .shortAndLong, help: "Detached mode: run command in the background.")
    var detach = false

    @Flag(name: .shortAndLong, help: "Keep STDIN open even if not attached.")
    var interactive = false

    @Flag(name: .shortAndLong, help: "Allocate a pseudo-TTY.")
    var tty = false

    @Option(name: .shortAndLong, help: ArgumentHelp("Set environment variables (NAME=VALUE).", valueName: "list"))
    var env: [String] = []

    @Option(name: .shortAndLong, help: ArgumentHelp("Working directory inside the container.", valueName: "string"))
    var workdir: String?

    @Option(name: .shortAndLong, help: ArgumentHelp("Username or UID (format: <name|uid>[:<group|gid>]).", valueName: "string"))
    var user: String?

    @Argument(help: "The container (name or ID).")
    var container: String

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.")
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("\"cryo exec\" requires at least 2 arguments.") }
    }

    func run() throws {
        do {
            let client = try daemon()
            _ = try client.get(ContainerInspectJSON.self, "/containers/\(path(container))/json")
            let size = tty ? (Terminal.size(1) ?? Terminal.size(0)) : nil
            let body = ExecCreateBody.build(cmd: command, interactive: interactive, tty: tty, detach: detach, env: env,
                                            workdir: workdir, user: user, consoleSize: size)
            let r = try client.call("POST", "/containers/\(path(container))/exec", json: try encode(body))
            struct Created: Decodable { var Id: String }
            let eid = try client.decode(Created.self, r.body, what: "exec create").Id
            if eid.isEmpty { throw ClientError.protocolError("exec ID empty") }
            struct StartBody: Encodable { var Detach: Bool; var Tty: Bool; var ConsoleSize: [Int]? }
            if detach {
                try client.call("POST", "/exec/\(eid)/start", json: try encode(StartBody(Detach: true, Tty: tty)))
                return
            }
            let stream = try client.hijack("/exec/\(eid)/start", json: try encode(StartBody(Detach: false, Tty: tty, ConsoleSize: size)))
            if tty && Terminal.isTTY(1) { sendResize(client, "/exec/\(eid)/resize") }
            try AttachedSession(stream: stream, tty: tty, forwardStdin: interactive).run()
            let info = try client.get(ExecInspectJSON.self, "/exec/\(eid)/json")
            throw ExitCode(info.ExitCode ?? 0)
        } catch {
            throw fail(error)
        }
    }
}
