import ArgumentParser
import CryoClient
import FoundationEssentials

struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Manage checkpoints (CRIU): create, ls, rm, export, push, inspect. Restore with `cryo start --checkpoint NAME` (an archive with `cryo container restore --import FILE`, an image with `--image REF`).",
        subcommands: [CheckpointCreate.self, CheckpointList.self, CheckpointRemove.self, CheckpointExport.self, CheckpointPush.self, CheckpointInspect.self, CheckpointCheckCommand.self])
}

struct CheckpointCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a checkpoint from a running container.",
        discussion: """
        Prints the checkpoint name (like docker) and, on stderr, one line with what CRIU \
        measured: freeze time, memory dump and write times, pages written, bytes written and \
        the total time. --format json prints cryod's checkpoint report instead. \
        Without --leave-running the container stops after the checkpoint.
        """)

    @Flag(name: .customLong("leave-running"), help: "Leave the container running after checkpoint.")
    var leaveRunning = false

    @Option(name: .customLong("checkpoint-dir"), help: ArgumentHelp("Use a custom checkpoint storage directory.", valueName: "string"))
    var checkpointDir: String?

    @Flag(name: .customLong("tcp-established"), help: "Checkpoint established TCP connections (CRIU's tcp-established).")
    var tcpEstablished = false

    @Option(name: .long, help: ArgumentHelp("Output format: json prints the checkpoint report; a Go template formats it.", valueName: "string"))
    var format: String?

    @Argument(help: "The container.") var container: String
    @Argument(help: "The checkpoint name.") var checkpoint: String

    func run() throws {
        do {
            let body = CheckpointCreateBody(CheckpointID: checkpoint, CheckpointDir: checkpointDir ?? "", Exit: !leaveRunning)
            let r = try daemon().call("POST", "/containers/\(path(container))/checkpoints",
                                      query: tcpEstablished ? [("tcp-established", "1")] : [], json: try encode(body))
            let raw = trimmed(r.body)
            if try ListFormat.printReport(format, json: raw) { return }
            if ListFormat.isJSON(format) {
                out((raw.isEmpty ? "{}" : String(decoding: raw, as: UTF8.self)) + "\n")
                return
            }
            out(checkpoint + "\n")
            if !raw.isEmpty, let report = try? JSONDecoder().decode(CheckpointReportJSON.self, from: Data(raw)) {
                err(report.summary + "\n")
            }
        } catch {
            throw fail(error)
        }
    }
}

struct CheckpointList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List checkpoints for a container.", aliases: ["list"])

    @Option(name: .customLong("checkpoint-dir"), help: ArgumentHelp("Use a custom checkpoint storage directory.", valueName: "string"))
    var checkpointDir: String?

    @Option(name: .long, help: ArgumentHelp("Output format: json prints the list as JSON; a Go template (docker's) formats each checkpoint.", valueName: "string"))
    var format: String?

    @Argument(help: "The container.") var container: String

    func run() throws {
        do {
            let r = try daemon().call("GET", "/containers/\(path(container))/checkpoints",
                                      query: checkpointDir.map { [("dir", $0)] } ?? [])
            if ListFormat.isJSON(format) {
                out(String(decoding: trimmed(r.body), as: UTF8.self) + "\n")
                return
            }
            if let template = ListFormat.template(format) {
                // docker checkpoint ls: .Name, titled CHECKPOINT NAME.
                guard case .array(let rows) = try TemplateJSON.parse(r.body) else { throw ClientError.protocolError("cryod's checkpoint list is not a JSON array") }
                try ListFormat.printList(template, rows: rows, header: .map(["Name": .string("CHECKPOINT NAME")]))
                return
            }
            let list = try JSONDecoder().decode([CheckpointJSON].self, from: Data(r.body))
            out(Format.table([["CHECKPOINT NAME"]] + list.map { [$0.Name] }))
        } catch {
            throw fail(error)
        }
    }
}

struct CheckpointRemove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a checkpoint.", aliases: ["remove"])

    @Option(name: .customLong("checkpoint-dir"), help: ArgumentHelp("Use a custom checkpoint storage directory.", valueName: "string"))
    var checkpointDir: String?

    @Argument(help: "The container.") var container: String
    @Argument(help: "The checkpoint name.") var checkpoint: String

    func run() throws {
        do {
            try daemon().call("DELETE", "/containers/\(path(container))/checkpoints/\(path(checkpoint))",
                              query: checkpointDir.map { [("dir", $0)] } ?? [])
        } catch {
            throw fail(error)
        }
    }
}
