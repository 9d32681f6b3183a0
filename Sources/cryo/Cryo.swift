import ArgumentParser
import CryoClient

/// The root command. `-H/--host` is handled in main.swift before parsing (it must come
/// before the verb); it is declared here so that `cryo --help` shows it.
struct Cryo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cryo",
        abstract: "The command-line client of cryod, the cryo container engine (docker's verbs and flags).",
        discussion: """
        cryo talks to cryod's Docker Engine API over a unix socket, or over TCP with mutual \
        TLS. The daemon is found by -H/--host unix://PATH or tcp://HOST:PORT (before the \
        command), then the CRYO_HOST, then DOCKER_HOST environment variable, then \
        unix:///run/cryo/cryo.sock.

        TCP needs TLS, as the docker CLI's: --tlsverify (or DOCKER_TLS_VERIFY=1) and \
        --tlscacert/--tlscert/--tlskey, which default to ca.pem, cert.pem and key.pem in \
        DOCKER_CERT_PATH (else ~/.docker). `cryo tls init` and `cryo tls issue` make them.

        Exit status: as docker's. 125 when run/create fail before the container runs (or \
        for flag errors); the container's (or exec's) exit code for run, start -a, attach \
        and exec; 1 for other errors, printed as "Error response from daemon: <message>".
        """,
        subcommands: [
            Run.self, Create.self, Start.self, Stop.self, Restart.self, Kill.self, Pause.self, Unpause.self,
            Remove.self, PS.self, Inspect.self, Logs.self, Wait.self, Exec.self, Attach.self, Port.self,
            Top.self, Copy.self, Rename.self, Diff.self, Stats.self, Update.self, Events.self,
            CheckpointCommand.self, ContainerGroup.self, Migrate.self, Fork.self, NetworkCommand.self, VolumeCommand.self,
            Images.self, Load.self, Import.self, Pull.self, Push.self, Tag.self, RemoveImage.self, History.self, Commit.self, Save.self, Export.self, ImageCommand.self,
            Version.self, Info.self, SystemCommand.self, TLSCommand.self,
        ])

    @Option(name: [.customShort("H"), .long], help: ArgumentHelp("Daemon socket to connect to: unix://PATH or tcp://HOST:PORT (give it before the command).", valueName: "host"))
    var host: String?

    @Flag(help: "Use TLS; cryo always verifies the daemon (same as --tlsverify).")
    var tls = false

    @Flag(help: "Use TLS and verify the daemon (default: DOCKER_TLS_VERIFY non-empty).")
    var tlsverify = false

    @Option(help: ArgumentHelp("Trust certs signed only by this CA (default $DOCKER_CERT_PATH/ca.pem).", valueName: "path"))
    var tlscacert: String?

    @Option(help: ArgumentHelp("TLS certificate file (default $DOCKER_CERT_PATH/cert.pem).", valueName: "path"))
    var tlscert: String?

    @Option(help: ArgumentHelp("TLS key file (default $DOCKER_CERT_PATH/key.pem).", valueName: "path"))
    var tlskey: String?
}
