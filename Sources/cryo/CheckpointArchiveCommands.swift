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
        abstract: "Checkpoint a container into an archive, or restore one from an archive (podman's spellings).",
        subcommands: [ContainerCheckpoint.self, ContainerRestore.self])
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
        abstract: "Restore a container from a checkpoint archive (cryo's or podman's), as a new container.",
        discussion: """
        The archive is checked before anything is made: its members' digests (when it has \
        cryo's digest list; podman's archives have none), member names and types (no path \
        escapes, no symlinks or devices), and the size it unpacks to. Then a new container is \
        created from the archived configuration — with its own ID, and --name, --network, \
        --ip and -p if given — its rootfs changes and /dev/shm are put back, and CRIU restores \
        its processes. Restore the same archive any number of times with different names: \
        each copy gets its own address, ports, hostname and /etc/hosts. The archive's image \
        must be in cryo's image store (cryo load). Prints the new container's ID. \
        A checkpoint with established TCP connections cannot be imported (the new container \
        has its own address). To restore a checkpoint kept by cryod use `cryo start --checkpoint`.
        """)

    @Option(name: [.customShort("i"), .customLong("import")], help: ArgumentHelp("The checkpoint archive (required).", valueName: "file"))
    var importFile: String

    @Option(name: [.customShort("n"), .long], help: ArgumentHelp("Name of the new container (default: the archived container's).", valueName: "string"))
    var name: String?

    @Option(name: .long, help: ArgumentHelp("Connect the new container to this network.", valueName: "network"))
    var network: String?

    @Option(name: .long, help: ArgumentHelp("IPv4 address of the new container.", valueName: "address"))
    var ip: String?

    @Option(name: [.customShort("p"), .customLong("publish")], help: ArgumentHelp("Publish a container's port (replaces the archived ones).", valueName: "list"))
    var publish: [String] = []

    func run() throws {
        do {
            let fd = open(importFile, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw ClientError.io("cannot open \(importFile): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
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
            let s = try daemon().upload("POST", "/containers/restore", query: query, contentType: "application/x-tar", source: .fileDescriptor(fd))
            defer { s.close() }
            struct Report: Decodable { var Id: String; var Name: String; var Verified: Bool; var Source: String }
            let r = try JSONDecoder().decode(Report.self, from: Data(try s.readAll()))
            out(r.Id + "\n")
            if !r.Verified { err("warning: the archive (\(r.Source)'s) carries no digests: its integrity was not verified\n") }
        } catch {
            throw fail(error)
        }
    }
}
