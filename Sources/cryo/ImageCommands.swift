import ArgumentParser
import CryoClient
import FoundationEssentials
import Glibc

/// Prints a JSON-message stream (load, import): `stream` text as is, `status` lines,
/// and an `error` ends the command with exit 1.
func printMessages(_ s: ResponseStream) throws {
    var failure: String?
    try s.forEachLine { line in
        guard let m = try? JSONDecoder().decode(JSONMessage.self, from: Data(line.utf8)) else {
            out(line + "\n")
            return
        }
        if let e = m.errorDetail?.message ?? m.error {
            failure = e
        } else if let text = m.stream {
            out(text)
        } else if let st = m.status {
            out((m.id.map { "\($0): " } ?? "") + st + "\n")
        }
    }
    if let f = failure {
        err(f + "\n")
        throw ExitCode(1)
    }
}

/// Opens FILE for reading, or stdin for "-" / nil; refuses a terminal on stdin.
func openInput(_ file: String?, what: String) throws -> Int32 {
    guard let f = file, f != "-" else {
        if Terminal.isTTY(0) {
            throw ClientError.usage("requested \(what) from stdin, but stdin is empty (give a file, or redirect stdin)")
        }
        return 0
    }
    let fd = open(f, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw ClientError.usage("open \(f): \(String(cString: strerror(errno)))") }
    return fd
}

struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load an image from a tar archive (docker save or OCI layout) or STDIN.",
        discussion: "The archive is streamed to cryod (chunked upload); prints \"Loaded image: NAME\" per image.")

    @Option(name: .shortAndLong, help: ArgumentHelp("Read from tar archive file, instead of STDIN.", valueName: "string"))
    var input: String?

    @Flag(name: .shortAndLong, help: "Suppress the load output.")
    var quiet = false

    func run() throws {
        do {
            let fd = try openInput(input, what: "load")
            defer { if fd != 0 { close(fd) } }
            let client = try daemon()
            let s = try client.upload("POST", "/images/load", query: [("quiet", quiet || !Terminal.isTTY(1) ? "1" : "0")],
                                      contentType: "application/x-tar", source: .fileDescriptor(fd))
            defer { s.close() }
            if quiet { _ = try s.readAll() } else { try printMessages(s) }
        } catch {
            throw fail(error)
        }
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import the contents from a tarball (plain, gzip or zstd) to create a filesystem image.",
        discussion: "FILE is a path or \"-\" for STDIN. Prints the new image's ID.")

    @Argument(help: "The tarball, or - for STDIN.")
    var file: String

    @Argument(help: "Repository and optional tag for the image: REPO[:TAG].")
    var reference: String?

    func run() throws {
        do {
            let fd = try openInput(file, what: "import")
            defer { if fd != 0 { close(fd) } }
            var q: [(String, String)] = [("fromSrc", "-")]
            if let r = reference {
                let (repo, tag) = Format.splitReference(r)
                q += [("repo", repo), ("tag", tag)]
            }
            let s = try daemon().upload("POST", "/images/create", query: q, contentType: "application/x-tar", source: .fileDescriptor(fd))
            defer { s.close() }
            try printMessages(s)
        } catch {
            throw fail(error)
        }
    }
}

struct Images: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List images.")

    @Flag(name: .shortAndLong, help: "Only show image IDs.")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Show all images (accepted for compatibility).")
    var all = false

    @Flag(name: .customLong("no-trunc"), help: "Don't truncate output.")
    var noTrunc = false

    @Option(name: .long, help: ArgumentHelp("Output format: table (default), json, or a Go template as docker's.", valueName: "string"))
    var format: String?

    func run() throws {
        do {
            let r = try daemon().call("GET", "/images/json", query: all ? [("all", "1")] : [])
            let list = try JSONDecoder().decode([ImageSummaryJSON].self, from: Data(r.body))
            func id(_ i: ImageSummaryJSON) -> String { noTrunc ? i.Id : Format.shortID(i.Id) }
            ListFormat.warnIfQuiet(format, quiet: quiet)
            if quiet {
                var seen = Set<String>()
                for i in list where seen.insert(id(i)).inserted { out(id(i) + "\n") }
                return
            }
            let t = now()
            if let template = ListFormat.template(format) {
                let rows = list.flatMap { ImageContext.rows($0, truncate: !noTrunc, now: t) }.map { TemplateValue.object($0) }
                try ListFormat.printList(template, rows: rows, header: ImageContext.header)
                return
            }
            var rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]]
            var json: [String] = []
            for i in list {
                let created = i.Created.map { Format.duration(seconds: t - Double($0)) + " ago" } ?? ""
                let size = Format.size(i.Size ?? 0)
                let tags = (i.RepoTags ?? []).isEmpty ? ["<none>:<none>"] : i.RepoTags!
                for tag in tags {
                    let (repo, t) = tag == "<none>:<none>" ? ("<none>", "<none>") : Format.splitReference(tag)
                    rows.append([repo, t, id(i), created, size])
                    struct Line: Encodable { var Repository, Tag, ID, CreatedSince, Size: String }
                    json.append(String(decoding: try encode(Line(Repository: repo, Tag: t, ID: id(i), CreatedSince: created, Size: size)), as: UTF8.self))
                }
            }
            if ListFormat.isJSON(format) { for l in json { out(l + "\n") } } else { out(Format.table(rows)) }
        } catch {
            throw fail(error)
        }
    }
}

struct RemoveImage: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rmi",
        abstract: "Remove one or more images (untag; the last tag deletes the image and its unused layers).")

    @Flag(name: .shortAndLong, help: "Force removal of the image.")
    var force = false

    @Argument(help: "Images (name[:tag] or ID).")
    var images: [String]

    func run() throws {
        let client = try daemon()
        try forEachTarget(images) { name in
            let r = try client.call("DELETE", "/images/\(name)", query: force ? [("force", "1")] : [])
            let items = (try? JSONDecoder().decode([ImageDeleteJSON].self, from: Data(r.body))) ?? []
            for i in items {
                if let u = i.Untagged { out("Untagged: \(u)\n") }
                if let d = i.Deleted { out("Deleted: \(d)\n") }
            }
        }
    }
}

struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Manage images.",
        subcommands: [ImageInspect.self, Images.self, Load.self, Import.self, RemoveImage.self, History.self, ImagePrune.self, Save.self])
}

struct ImageInspect: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Display detailed information on one or more images, as a JSON array.")

    @Option(name: .shortAndLong, help: ArgumentHelp("Format the output with a Go template (docker's), or json.", valueName: "string"))
    var format: String?

    @Argument(help: "Images (name[:tag] or ID).")
    var images: [String]

    func run() throws {
        try ListFormat.checkInspect(format)
        let client = try daemon()
        var found: [[UInt8]] = []
        var failures: [String] = []
        for n in images {
            do {
                found.append(trimmed(try client.call("GET", "/images/\(n)/json").body))
            } catch let e as ClientError where e.isNotFound {
                failures.append("Error response from daemon: No such image: \(n)")
            } catch {
                throw fail(error)
            }
        }
        try ListFormat.printInspect(format, items: found)
        for f in failures { err(f + "\n") }
        if !failures.isEmpty { throw ExitCode(1) }
    }
}

/// `docker history`: an image's build steps, newest first.
struct History: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the history of an image (its build steps, newest first).")

    @Flag(name: .customShort("H"), inversion: .prefixedNo, help: "Print sizes and dates in human readable format.")
    var human = true

    @Flag(name: .customLong("no-trunc"), help: "Don't truncate output.")
    var noTrunc = false

    @Flag(name: .shortAndLong, help: "Only show image IDs.")
    var quiet = false

    @Option(name: .long, help: ArgumentHelp("Output format: table (default), json, or a Go template as docker's (.ID, .CreatedSince, .CreatedAt, .CreatedBy, .Size, .Comment).", valueName: "string"))
    var format: String?

    @Argument(help: "The image (name[:tag] or ID).")
    var image: String

    struct Item: Decodable {
        var Id: String
        var Created: Int64
        var CreatedBy: String
        var Size: Int64
        var Comment: String
    }

    func run() throws {
        do {
            let client = try daemon()
            let items = try client.decode([Item].self, try client.call("GET", "/images/\(path(image))/history").body, what: "history")
            let t = now()
            ListFormat.warnIfQuiet(format, quiet: quiet)
            func id(_ i: Item) -> String { i.Id == "<missing>" || noTrunc ? i.Id : Format.shortID(i.Id) }
            if quiet {
                for i in items { out(id(i) + "\n") }
                return
            }
            let rows: [[String: String]] = items.map { i in
                let createdBy = i.CreatedBy.replacingOccurrences(of: "\t", with: " ")
                return ["ID": id(i),
                        "CreatedSince": human ? Format.duration(seconds: t - Double(i.Created)) + " ago" : Format.localTime(i.Created),
                        "CreatedAt": Format.localTime(i.Created),
                        "CreatedBy": noTrunc ? createdBy : Format.ellipsis(createdBy, 45),
                        "Size": human ? Format.size(i.Size) : String(i.Size), "Comment": i.Comment]
            }
            if ListFormat.isJSON(format) {
                for r in rows { out(String(decoding: try encode(r), as: UTF8.self) + "\n") }
            } else if let tmpl = ListFormat.template(format) {
                let header = TemplateHeader(names: ["ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                                                    "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"])
                try ListFormat.printList(tmpl, rows: rows.map { TemplateValue.map($0.mapValues { .string($0) }) }, header: .object(header))
            } else {
                out(Format.table([["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]]
                                 + rows.map { [$0["ID"]!, $0["CreatedSince"]!, $0["CreatedBy"]!, $0["Size"]!, $0["Comment"]!] }))
            }
        } catch {
            throw fail(error)
        }
    }
}

/// `docker commit`: a new image from a container's changes.
struct Commit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a new image from a container's changes (its image plus one layer).")

    @Option(name: .shortAndLong, help: ArgumentHelp("Author (e.g. \"Jane Doe <jane@example.com>\").", valueName: "string"))
    var author = ""

    @Option(name: .shortAndLong, help: ArgumentHelp("Commit message.", valueName: "string"))
    var message = ""

    @Flag(name: .shortAndLong, inversion: .prefixedNo, help: "Pause the container during commit.")
    var pause = true

    @Option(name: .shortAndLong, help: ArgumentHelp("Apply a Dockerfile instruction (refused: not supported by cryo yet).", valueName: "list"))
    var change: [String] = []

    @Argument(help: "The container.") var container: String
    @Argument(help: "The new image's name, [REPOSITORY[:TAG]].") var reference: String?

    func run() throws {
        do {
            var q: [(String, String)] = [("container", container), ("comment", message), ("author", author), ("pause", pause ? "1" : "0")]
            if let r = reference {
                let (repo, tag) = Format.splitReference(r)
                q += [("repo", repo), ("tag", tag)]
            }
            for c in change { q.append(("changes", c)) }
            struct R: Decodable { var Id: String }
            let client = try daemon()
            out(try client.decode(R.self, try client.call("POST", "/commit", query: q).body, what: "commit").Id + "\n")
        } catch {
            throw fail(error)
        }
    }
}

/// `docker save`: images as a tar (docker's layout since Docker 25: OCI layout + manifest.json).
struct Save: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Save one or more images to a tar archive (streamed to STDOUT by default).",
        discussion: """
        The archive is what `docker save` writes since Docker 25 (an OCI image layout and \
        manifest.json); docker load, podman load and cryo load read it. cryod keeps layers \
        unpacked and packs them again here, so a saved image's layer digests (and its ID) \
        may differ from the ones it had when it was pulled or loaded.
        """)

    @Option(name: .shortAndLong, help: ArgumentHelp("Write to a file, instead of STDOUT.", valueName: "string"))
    var output: String?

    @Argument(help: "Images (name[:tag] or ID).")
    var images: [String]

    func run() throws {
        try refuseTerminal(output)
        do {
            let s = try daemon().open("GET", "/images/get", query: images.map { ("names", $0) })
            defer { s.close() }
            try download(s, to: output)
        } catch {
            throw fail(error)
        }
    }
}

/// `docker export`: a container's filesystem as a tar.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a container's filesystem as a tar archive (streamed to STDOUT by default).")

    @Option(name: .shortAndLong, help: ArgumentHelp("Write to a file, instead of STDOUT.", valueName: "string"))
    var output: String?

    @Argument(help: "The container.") var container: String

    func run() throws {
        try refuseTerminal(output)
        do {
            let s = try daemon().open("GET", "/containers/\(path(container))/export")
            defer { s.close() }
            try download(s, to: output)
        } catch {
            throw fail(error)
        }
    }
}

/// docker's rule for save and export: a tar is never written to a terminal.
func refuseTerminal(_ output: String?) throws {
    if output == nil && isatty(1) == 1 {
        throw fail(ValidationError("cowardly refusing to save to a terminal. Use the -o flag or redirect"))
    }
}

/// A response body into `output` (see `save(_:to:)`), or to stdout.
func download(_ s: ResponseStream, to output: String?) throws {
    if let output { return try save(s, to: output) }
    while let chunk = try s.read() { writeFully(1, chunk) }
}
