import ArgumentParser
import CryoClient
import FoundationEssentials
import Glibc

/// The archive warning every export command repeats.
let archiveSecretsNote = """
The archive holds everything that was in the container's memory (keys, passwords, \
tokens): it is written with mode 0600; keep it as you would keep those secrets.
"""

/// Receives GET /containers/{id}/checkpoints/{cp}/export into FILE (0600, written beside
/// it and renamed into place, so a failed export never leaves half an archive).
func downloadArchive(container: String, checkpoint: String, dir: String?, compress: String, to file: String) throws {
    var query = [("compress", compress)]
    if let dir { query.append(("dir", dir)) }
    let s = try daemon().open("GET", "/containers/\(path(container))/checkpoints/\(path(checkpoint))/export", query: query)
    defer { s.close() }
    try save(s, to: file)
}

/// A response body into `file` (mode 0600), written as FILE.partial and renamed when complete.
func save(_ s: ResponseStream, to file: String) throws {
    let partial = file + ".partial"
    unlink(partial)
    let fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw ClientError.io("cannot create \(partial): \(String(cString: strerror(errno)))") }
    do {
        defer { close(fd) }
        fchmod(fd, 0o600)
        while let chunk = try s.read() {
            var off = 0
            while off < chunk.count {
                let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress! + off, chunk.count - off) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw ClientError.io("writing \(partial): \(String(cString: strerror(errno)))") }
                off += n
            }
        }
        guard fsync(fd) == 0 else { throw ClientError.io("fsync \(partial): \(String(cString: strerror(errno)))") }
    } catch {
        unlink(partial)
        throw error
    }
    guard rename(partial, file) == 0 else {
        unlink(partial)
        throw ClientError.io("rename \(partial) -> \(file): \(String(cString: strerror(errno)))")
    }
}

func checkCompression(_ c: String) throws {
    guard ["zstd", "gzip", "none"].contains(c) else {
        throw ValidationError("--compress: use zstd, gzip or none (not \"\(c)\")")
    }
}

struct CheckpointExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a checkpoint as one archive (podman's checkpoint export format).",
        discussion: """
        The archive holds CRIU's images (checkpoint/), config.dump and spec.dump, network.status, \
        stats-dump, the container's rootfs changes (rootfs-diff.tar, deleted.files) and its \
        /dev/shm (devshm-checkpoint.tar), plus cryo's container description and a sha256 of \
        every member (cryo-digests.json), checked on import. checkpointctl reads it; \
        `cryo container restore --import FILE` restores it, as a new container if you like. \
        The rootfs changes and /dev/shm are taken at export time.

        \(archiveSecretsNote)
        """)

    @Option(name: [.customShort("o"), .long], help: ArgumentHelp("The archive file to write.", valueName: "file"))
    var output: String

    @Option(name: [.customShort("c"), .long], help: ArgumentHelp("Compression of the archive: zstd (default), gzip or none.", valueName: "string"))
    var compress = "zstd"

    @Option(name: .customLong("checkpoint-dir"), help: ArgumentHelp("The checkpoint's custom storage directory.", valueName: "string"))
    var checkpointDir: String?

    @Argument(help: "The container.") var container: String
    @Argument(help: "The checkpoint name.") var checkpoint: String

    func validate() throws { try checkCompression(compress) }

    func run() throws {
        do {
            try downloadArchive(container: container, checkpoint: checkpoint, dir: checkpointDir, compress: compress, to: output)
        } catch {
            throw fail(error)
        }
    }
}

/// `cryo container …`: podman's spellings of checkpoint export and import.
struct ContainerGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "container",
        abstract: "Checkpoint a container into an archive, or restore one from an archive (podman's spellings); prune stopped containers.",
        subcommands: [ContainerCheckpoint.self, ContainerRestore.self, ContainerPrune.self, Commit.self, Export.self])
}

struct ContainerCheckpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Checkpoint a container and export the checkpoint as one archive, in one step.",
        discussion: """
        As podman's `container checkpoint --export`: checkpoints CONTAINER (stopping it unless \
        --leave-running), writes the archive, and removes the checkpoint it made. For a \
        checkpoint kept by cryod use `cryo checkpoint create` (and `cryo checkpoint export`).

        \(archiveSecretsNote)
        """)

    @Option(name: [.customShort("e"), .customLong("export")], help: ArgumentHelp("The archive file to write (required).", valueName: "file"))
    var export: String

    @Flag(name: [.customShort("R"), .customLong("leave-running")], help: "Leave the container running after the checkpoint.")
    var leaveRunning = false

    @Option(name: [.customShort("c"), .long], help: ArgumentHelp("Compression of the archive: zstd (default), gzip or none.", valueName: "string"))
    var compress = "zstd"

    @Argument(help: "The container.") var container: String

    func validate() throws { try checkCompression(compress) }

    func run() throws {
        do {
            let name = "export-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
            let body = CheckpointCreateBody(CheckpointID: name, CheckpointDir: "", Exit: !leaveRunning)
            try daemon().call("POST", "/containers/\(path(container))/checkpoints", json: try encode(body))
            defer { _ = try? daemon().call("DELETE", "/containers/\(path(container))/checkpoints/\(path(name))") }
            try downloadArchive(container: container, checkpoint: name, dir: nil, compress: compress, to: export)
            out(container + "\n")
        } catch {
            throw fail(error)
        }
    }
}

struct ContainerRestore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a checkpoint archive, a checkpoint image, or a checkpoint of a container, as a new container.",
        usage: """
        cryo container restore --import FILE [--name NEW] [--network N] [--ip A] [-p ...]
        cryo container restore --image REF [--username U --password-stdin] [--name NEW] [--network N] [--ip A] [-p ...]
        cryo container restore --checkpoint CP [--checkpoint-dir DIR] --name NEW [--network N] [--ip A] [-p ...] SOURCE
        """,
        discussion: """
        With --import, the archive (cryo's or podman's) is checked before anything is made: \
        its members' digests (when it has cryo's digest list; podman's archives have none), \
        member names and types (no path escapes, no symlinks or devices), and the size it \
        unpacks to. Then a new container is created from the archived configuration — with \
        its own ID, and --name, --network, --ip and -p if given — its rootfs changes and \
        /dev/shm are put back, and CRIU restores its processes. The archive's image must be \
        in cryo's image store (cryo load).

        With --image, REF is a checkpoint image in a registry (`cryo checkpoint push`, or \
        CRI-O's form: one layer with the archive's files, annotated \
        io.kubernetes.cri-o.annotations.checkpoint.name). Its manifest, config and layer are \
        verified by digest, a normal image is refused, and the layer is restored as --import \
        restores an archive, with the same checks. Nothing is added to the image store.

        With --checkpoint CP SOURCE, checkpoint CP of container SOURCE (made by `cryo \
        checkpoint create`, kept by cryod) is restored the same way as a new container named \
        --name (required). The checkpoint is left as it was: clone it any number of times, or \
        restore SOURCE from it. The clone's files are SOURCE's rootfs changes and /dev/shm as \
        they are now, not as they were when the checkpoint was made.

        Each new container gets its own ID, address, ports, hostname and /etc/hostname and \
        /etc/hosts. Prints the new container's ID. A checkpoint with established TCP \
        connections cannot be restored as a new container (it has its own address). To \
        restore a container in place use `cryo start --checkpoint`.
        """)

    @Option(name: [.customShort("i"), .customLong("import")], help: ArgumentHelp("The checkpoint archive.", valueName: "file"))
    var importFile: String?

    @Option(name: .long, help: ArgumentHelp("A checkpoint image in a registry: [REGISTRY/]NAME[:TAG|@DIGEST].", valueName: "ref"))
    var image: String?

    @OptionGroup var auth: RegistryAuthOptions

    @Option(name: .long, help: ArgumentHelp("A checkpoint of SOURCE to restore as a new container.", valueName: "name"))
    var checkpoint: String?

    @Option(name: .long, help: ArgumentHelp("The directory SOURCE's checkpoint was made in (with --checkpoint).", valueName: "dir"))
    var checkpointDir: String?

    @Option(name: [.customShort("n"), .long], help: ArgumentHelp("Name of the new container (default with --import and --image: the checkpointed container's).", valueName: "string"))
    var name: String?

    @Option(name: .long, help: ArgumentHelp("Connect the new container to this network.", valueName: "network"))
    var network: String?

    @Option(name: .long, help: ArgumentHelp("IPv4 address of the new container.", valueName: "address"))
    var ip: String?

    @Option(name: [.customShort("p"), .customLong("publish")], help: ArgumentHelp("Publish a container's port (replaces the source's).", valueName: "list"))
    var publish: [String] = []

    @Argument(help: "The container whose checkpoint is restored (with --checkpoint).")
    var source: String?

    func validate() throws {
        if image == nil && auth.username != nil { throw ValidationError("--username and --password-stdin go with --image (registry credentials)") }
        switch (importFile, image, checkpoint) {
        case (.some, .none, .none):
            if source != nil || checkpointDir != nil { throw ValidationError("--import takes no SOURCE container and no --checkpoint-dir") }
        case (.none, .some, .none):
            if source != nil || checkpointDir != nil { throw ValidationError("--image takes no SOURCE container and no --checkpoint-dir") }
        case (.none, .none, .some):
            if source == nil { throw ValidationError("--checkpoint needs the SOURCE container") }
            if name == nil { throw ValidationError("--checkpoint needs --name for the new container") }
        default:
            throw ValidationError("give one of --import FILE, --image REF or --checkpoint CP SOURCE")
        }
    }

    func run() throws {
        do {
            var query: [(String, String)] = []
            if let name { query.append(("name", name)) }
            if let network { query.append(("network", network)) }
            if let ip { query.append(("ip", ip)) }
            if !publish.isEmpty {
                var bindings: [String: [[String: String]]] = [:]
                for p in publish {
                    let s = try PortSpec.parse(p)
                    bindings[s.key, default: []].append(["HostIp": s.hostIP, "HostPort": s.hostPort])
                }
                query.append(("ports", String(decoding: try encode(bindings), as: UTF8.self)))
            }
            if let checkpoint, let source {
                if let checkpointDir { query.append(("dir", checkpointDir)) }
                let r = try daemon().call("POST", "/containers/\(path(source))/checkpoints/\(path(checkpoint))/clone", query: query)
                struct Report: Decodable { var Id: String }
                out(try JSONDecoder().decode(Report.self, from: Data(trimmed(r.body))).Id + "\n")
                return
            }
            struct Report: Decodable { var Id: String; var Name: String; var Verified: Bool; var Source: String }
            if let image {
                query.append(("image", image))
                let s = try daemon().open("POST", "/containers/restore", query: query, headers: [("X-Registry-Auth", try auth.header())])
                defer { s.close() }
                let r = try JSONDecoder().decode(Report.self, from: Data(try s.readAll()))
                out(r.Id + "\n")
                if !r.Verified { err("warning: the image's checkpoint (\(r.Source)'s) carries no member digests: only its layer digest was verified\n") }
                return
            }
            guard let importFile else { return }
            let fd = open(importFile, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw ClientError.io("cannot open \(importFile): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            let s = try daemon().upload("POST", "/containers/restore", query: query, contentType: "application/x-tar", source: .fileDescriptor(fd))
            defer { s.close() }
            let r = try JSONDecoder().decode(Report.self, from: Data(try s.readAll()))
            out(r.Id + "\n")
            if !r.Verified { err("warning: the archive (\(r.Source)'s) carries no digests: its integrity was not verified\n") }
        } catch {
            throw fail(error)
        }
    }
}

struct Fork: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fork",
        abstract: "Start a copy of a running container beside it; the container goes on.",
        discussion: """
        One step: CONTAINER is checkpointed leaving it running (its images go into a \
        temporary directory in cryod's exec-root, in memory where /run is a tmpfs), the copy is restored from them as \
        NEW, and the temporary checkpoint is removed. The copy runs on from the moment of the \
        fork — its memory, its files in the rootfs and /dev/shm — with its own ID, name, \
        address, ports, hostname and /etc files. Established TCP connections stay with \
        CONTAINER (a container labelled io.cryo.checkpoint.tcp-established is refused). \
        Prints NEW's ID, and on stderr how long CONTAINER was frozen and how long until the \
        copy ran; --format json prints cryod's report instead.
        """)

    @Option(name: .long, help: ArgumentHelp("Connect the copy to this network.", valueName: "network"))
    var network: String?

    @Option(name: .long, help: ArgumentHelp("IPv4 address of the copy.", valueName: "address"))
    var ip: String?

    @Option(name: [.customShort("p"), .customLong("publish")], help: ArgumentHelp("Publish a port of the copy (replaces the container's).", valueName: "list"))
    var publish: [String] = []

    @Option(name: .long, help: ArgumentHelp("Output format: json prints the fork report; a Go template formats it.", valueName: "string"))
    var format: String?

    @Argument(help: "The running container.") var container: String
    @Argument(help: "The copy's name.") var new: String

    func run() throws {
        do {
            var query: [(String, String)] = [("name", new)]
            if let network { query.append(("network", network)) }
            if let ip { query.append(("ip", ip)) }
            if !publish.isEmpty {
                var bindings: [String: [[String: String]]] = [:]
                for p in publish {
                    let s = try PortSpec.parse(p)
                    bindings[s.key, default: []].append(["HostIp": s.hostIP, "HostPort": s.hostPort])
                }
                query.append(("ports", String(decoding: try encode(bindings), as: UTF8.self)))
            }
            let r = try daemon().call("POST", "/containers/\(path(container))/fork", query: query)
            let raw = trimmed(r.body)
            if try ListFormat.printReport(format, json: raw) { return }
            if ListFormat.isJSON(format) {
                out(String(decoding: raw, as: UTF8.self) + "\n")
                return
            }
            struct Report: Decodable { var Id: String; var PauseMs: Double?; var TimeToRunningMs: Double }
            let report = try JSONDecoder().decode(Report.self, from: Data(raw))
            out(report.Id + "\n")
            let pause = report.PauseMs.map { String(format1: $0) + " ms" } ?? "unknown"
            err("paused \(container) for \(pause); \(new) running after \(String(format1: report.TimeToRunningMs)) ms\n")
        } catch {
            throw fail(error)
        }
    }
}

extension String {
    /// A number of milliseconds with one decimal.
    init(format1 v: Double) {
        let tenths = Int((v * 10).rounded())
        self = "\(tenths / 10).\(tenths % 10)"
    }
}
