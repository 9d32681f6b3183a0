import ArgumentParser
import CryoClient

/// The root command. `-H/--host` is handled in main.swift before parsing (it must come
/// before the verb); it is declared here so that `cryo --help` shows it.
struct Cryo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cryo",
        abstract: "The command-line client of cryod, the cryo container engine (docker's verbs and flags).",
        discussion: """
        cryo talks to cryod's Docker Engine API over a unix socket. The daemon is found by \
        -H/--host unix://PATH (before the command), then the CRYO_HOST environment \
        variable, then unix:///run/cryo/cryo.sock.

        Exit status: as docker's. 125 when run/create fail before the container runs (or \
        for flag errors); the container's (or exec's) exit code for run, start -a, attach \
        and exec; 1 for other errors, printed as "Error response from daemon: <message>".
        """,
        subcommands: [
            Run.self, Create.self, Start.self, Stop.self, Restart.self, Kill.self, Pause.self, Unpause.self,
            Remove.self, PS.self, Inspect.self, Logs.self, Wait.self, Exec.self, Attach.self, Port.self,
            CheckpointCommand.self, Migrate.self, NetworkCommand.self,
            Images.self, Load.self, Import.self, RemoveImage.self, ImageCommand.self,
            Version.self, Info.self,
        ])

    @Option(name: [.customShort("H"), .long], help: ArgumentHelp("Daemon socket to connect to: unix://PATH (give it before the command).", valueName: "host"))
    var host: String?
}
