import ArgumentParser
import CryoClient
import FoundationEssentials

/// `cryo checkpoint push CONTAINER CHECKPOINT REF`: a checkpoint kept by cryod into a
/// registry as a checkpoint image (CRI-O's form, which Kubernetes restores).
struct CheckpointPush: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Push a checkpoint to a registry as an OCI checkpoint image (CRI-O's form).",
        discussion: """
        The image has one layer holding the checkpoint archive's files at its root \
        (checkpoint/, config.dump, spec.dump, the rootfs changes, /dev/shm, cryo's digest \
        list — as `cryo checkpoint export` writes them, uncompressed) and the manifest \
        annotations CRI-O looks for (io.kubernetes.cri-o.annotations.checkpoint.*) plus \
        checkpointctl's org.criu.checkpoint.*. `cryo container restore --image REF` restores \
        it; so can CRI-O (Kubernetes) when the container's image is in its store. The rootfs \
        changes and /dev/shm are taken at push time. Credentials: --username with \
        --password-stdin (cryo keeps none).

        The image holds everything that was in the container's memory (keys, passwords, \
        tokens): push it only to a registry you trust with those secrets.
        """)

    @Option(name: .customLong("checkpoint-dir"), help: ArgumentHelp("The checkpoint's custom storage directory.", valueName: "string"))
    var checkpointDir: String?

    @OptionGroup var auth: RegistryAuthOptions

    @Flag(name: .shortAndLong, help: "Suppress the progress output.")
    var quiet = false

    @Argument(help: "The container.") var container: String
    @Argument(help: "The checkpoint name.") var checkpoint: String
    @Argument(help: "The image to push to: [REGISTRY/]NAME[:TAG] (without a tag, latest).") var ref: String

    func run() throws {
        do {
            var query = [("ref", ref)]
            if let checkpointDir { query.append(("dir", checkpointDir)) }
            let s = try daemon().open("POST", "/containers/\(path(container))/checkpoints/\(path(checkpoint))/push",
                                      query: query, headers: [("X-Registry-Auth", try auth.header())])
            defer { s.close() }
            try printProgress(s, quiet: quiet)
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail(error)
        }
    }
}
