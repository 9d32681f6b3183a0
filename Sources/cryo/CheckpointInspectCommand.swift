import ArgumentParser
import CryoArchive
import CryoCheckpointInspect
import CryoClient
import FoundationEssentials
import Glibc

/// `cryo checkpoint inspect CONTAINER CHECKPOINT` asks cryod (which owns the images and checks
/// the names); `--archive FILE` reads an exported archive right here, with the user's own
/// access to the file: nothing is uploaded, and no daemon is needed.
struct CheckpointInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what a checkpoint holds: processes, open files, pipes, sockets, mounts, memory, namespaces, CRIU's statistics.",
        discussion: """
        Read from CRIU's image files; CRIU is not needed. Environment variables often hold \
        secrets and are shown only with --env. --search/--search-regex list where a string \
        occurs in the memory saved in the checkpoint: process, mapping, address, context \
        (non-printable bytes as '.'; at most 1000 matches). --archive reads an archive made by \
        `cryo checkpoint export` (or podman's) instead of a container's checkpoint.
        """)

    @Option(name: .long, help: ArgumentHelp("Inspect a checkpoint archive file instead.", valueName: "file"))
    var archive: String?

    @Flag(name: .customLong("env"), help: "Also show each process's environment variables.")
    var env = false

    @Option(name: .long, help: ArgumentHelp("Search the checkpointed memory for this string.", valueName: "string"))
    var search: String?

    @Option(name: .customLong("search-regex"), help: ArgumentHelp("Search the checkpointed memory with this regular expression.", valueName: "regex"))
    var searchRegex: String?

    @Option(name: .long, help: ArgumentHelp("Bytes of context shown around each match (0-256).", valueName: "n"))
    var context: Int = 32

    @Option(name: .customLong("checkpoint-dir"), help: ArgumentHelp("Use a custom checkpoint storage directory.", valueName: "string"))
    var checkpointDir: String?

    @Option(name: .long, help: ArgumentHelp("Output format: json prints the inspection as JSON; a Go template (as docker's) formats it.", valueName: "string"))
    var format: String?

    @Argument(help: "The container (not with --archive).") var container: String?
    @Argument(help: "The checkpoint name (not with --archive).") var checkpoint: String?

    var pattern: MemorySearch.Pattern? {
        if let search { return .literal(search) }
        return searchRegex.map { .regex($0) }
    }

    func validate() throws {
        if search != nil && searchRegex != nil { throw ValidationError("--search and --search-regex: give one of them") }
        guard (0...MemorySearch.maxContext).contains(context) else { throw ValidationError("--context: 0 to \(MemorySearch.maxContext) bytes") }
        try ListFormat.checkInspect(ListFormat.template(format))
        if archive != nil {
            guard container == nil, checkpoint == nil else { throw ValidationError("--archive takes no container or checkpoint name") }
            guard checkpointDir == nil else { throw ValidationError("--checkpoint-dir does not apply to --archive") }
        } else {
            guard container != nil, checkpoint != nil else { throw ValidationError("a container and a checkpoint name are required (or --archive FILE)") }
        }
    }

    func run() throws {
        do {
            let inspection: CheckpointInspection
            if let archive {
                inspection = try Self.inspectArchive(archive, environment: env, search: pattern, context: context)
            } else {
                var query: [(String, String)] = env ? [("env", "1")] : []
                if let checkpointDir { query.append(("dir", checkpointDir)) }
                if let search { query.append(("search", search)) }
                if let searchRegex { query.append(("search-regex", searchRegex)) }
                if pattern != nil { query.append(("context", String(context))) }
                let r = try daemon().call("GET", "/containers/\(path(container!))/checkpoints/\(path(checkpoint!))/inspect", query: query)
                inspection = try JSONDecoder().decode(CheckpointInspection.self, from: Data(r.body))
            }
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            if try ListFormat.printReport(format, json: Array(try e.encode(inspection))) { return }
            if ListFormat.isJSON(format) {
                out(String(decoding: try e.encode(inspection), as: UTF8.self) + "\n")
            } else {
                out(InspectionText.render(inspection))
            }
        } catch {
            throw fail(error)
        }
    }

    /// Unpacks the archive (strictly: CheckpointArchiveReader's checks and limits) into a
    /// private temporary directory, inspects its `checkpoint/` and root `stats-dump`, removes it.
    static func inspectArchive(_ archive: String, environment: Bool, search: MemorySearch.Pattern?, context: Int) throws -> CheckpointInspection {
        if let search {
            do { try MemorySearch.validate(search) } catch let e as InspectError { throw CLIError(e.message) }
        }
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/var/tmp"
        var template = Array((base + "/cryo-inspect.XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw CLIError("cannot make a temporary directory in \(base): \(String(cString: strerror(errno)))")
        }
        let staging = String(cString: made)
        defer { removeTree(staging) }
        // What the archive may unpack to: the free space where it is unpacked.
        var fs = statvfs()
        let free = statvfs(staging, &fs) == 0 ? Int64(fs.f_bavail) * Int64(fs.f_frsize) : Int64.max
        let extracted: ExtractedCheckpointArchive
        do {
            extracted = try CheckpointArchiveReader.extract(archive, into: staging, limits: ArchiveLimits(maxBytes: free))
        } catch let e as ArchiveError {
            throw CLIError("checkpoint archive \(archive): \(e.message)")
        }
        let images = extracted.path(CheckpointArchiveLayout.checkpointDirectory)
        do {
            return try CheckpointInspector.inspect(directory: images, statsFile: extracted.path(CheckpointArchiveLayout.statsDump), environment: environment,
                                                  search: search, context: context)
        } catch let e as InspectError {
            throw CLIError("checkpoint archive \(archive): \(e.message)")
        }
    }

    /// rm -r of the private staging directory (plain files and directories only: the reader refuses anything else).
    static func removeTree(_ dir: String) {
        guard let d = opendir(dir) else { return }
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name == "." || name == ".." { continue }
            let p = dir + "/" + name
            if e.pointee.d_type == UInt8(DT_DIR) { removeTree(p) } else { unlink(p) }
        }
        closedir(d)
        rmdir(dir)
    }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
