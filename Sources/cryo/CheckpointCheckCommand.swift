import ArgumentParser
import CryoCheckpointInspect
import CryoClient
import FoundationEssentials
import Glibc

/// `cryo checkpoint check CONTAINER`: asks cryod whether the container can be checkpointed
/// (a dry run, nothing is frozen). Exit 0 when it can, 1 when it cannot.
struct CheckpointCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Tell, without checkpointing, whether a running container can be checkpointed, and if not why.",
        discussion: """
        Looks at every process of the container: terminals (-t), io_uring, unix sockets connected \
        outside the container, host files and devices it holds open, device mappings, and the \
        installed CRIU's version. Each "cannot" names the process (pid, command) and the resource. \
        Exit status 0: it can be checkpointed; 1: it cannot.
        """)

    @Option(name: .long, help: ArgumentHelp("Output format: json prints the answer as JSON.", valueName: "string"))
    var format: String?

    @Argument(help: "The container.") var container: String

    func validate() throws {
        if let format, !ListFormat.isJSON(format) { throw ValidationError("--format: only json is supported here, got \(format)") }
    }

    func run() throws {
        let check: CheckpointCheck
        do {
            let r = try daemon().call("GET", "/containers/\(path(container))/checkpoint/check")
            check = try JSONDecoder().decode(CheckpointCheck.self, from: Data(r.body))
        } catch {
            throw fail(error)
        }
        if ListFormat.isJSON(format) {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            out(String(decoding: (try? e.encode(check)) ?? Data(), as: UTF8.self) + "\n")
        } else {
            out(CheckpointCheckText.render(check))
        }
        if !check.checkpointable { throw ExitCode(1) }
    }
}
