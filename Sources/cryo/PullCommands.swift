import ArgumentParser
import CryoClient
import FoundationEssentials
import Glibc

/// `cryo pull`: cryod pulls from the registry; progress lines are printed as the docker CLI
/// prints them without a terminal (`ID: status`, the lines with a byte bar left out).
struct Pull: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download an image from a registry.",
        discussion: "NAME[:TAG|@DIGEST]; without a tag, latest. Credentials: --username with --password-stdin (cryo keeps none).")

    @Argument(help: "The image: NAME[:TAG|@DIGEST].")
    var name: String

    @Option(help: ArgumentHelp("Pull for this platform: os[/arch[/variant]] (default linux/amd64).", valueName: "string"))
    var platform: String?

    @OptionGroup var auth: RegistryAuthOptions

    @Flag(name: .shortAndLong, help: "Suppress the progress output.")
    var quiet = false

    func run() throws {
        do {
            var image = name
            var tag = ""
            if let at = name.firstIndex(of: "@") {
                image = String(name[..<at])
                tag = String(name[name.index(after: at)...])
            } else {
                (image, tag) = Format.splitReference(name)
            }
            var q: [(String, String)] = [("fromImage", image), ("tag", tag)]
            if let platform { q.append(("platform", platform)) }
            let s = try daemon().open("POST", "/images/create", query: q, headers: [("X-Registry-Auth", try auth.header())])
            defer { s.close() }
            try printProgress(s, quiet: quiet)
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail(error)
        }
    }
}

/// `--username` / `--password-stdin`: the credentials cryod passes to the registry (cryo keeps none).
struct RegistryAuthOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Registry user name.")
    var username: String?

    @Flag(name: .customLong("password-stdin"), help: "Read the registry password from STDIN.")
    var passwordStdin = false

    func validate() throws {
        if passwordStdin && username == nil { throw ValidationError("--password-stdin needs --username") }
    }

    /// X-Registry-Auth: base64url of {"username", "password"} (empty without --username).
    func header() throws -> String {
        var auth: [String: String] = [:]
        if let username {
            auth["username"] = username
            if passwordStdin {
                var pw = String(decoding: try readStdin(), as: UTF8.self)
                while pw.hasSuffix("\n") || pw.hasSuffix("\r") { pw.removeLast() }
                auth["password"] = pw
            }
        }
        return Data(try encodeJSON(auth)).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }

    func readStdin() throws -> [UInt8] {
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw ClientError.usage("reading the password from stdin: \(String(cString: strerror(errno)))") }
            if n == 0 { return bytes }
            bytes += buf[0..<n]
        }
    }
}

/// A pull's or push's progress stream as the docker CLI prints it without a terminal (`ID:
/// status`, the lines with a byte bar left out); an error line fails with exit 1.
func printProgress(_ s: ResponseStream, quiet: Bool) throws {
    var failure: String?
    try s.forEachLine { line in
        struct Line: Decodable {
            var status: String?
            var id: String?
            var progress: String?
            var error: String?
        }
        guard let m = try? JSONDecoder().decode(Line.self, from: Data(line.utf8)) else { return }
        if let e = m.error {
            failure = e
        } else if let st = m.status, m.progress == nil, !quiet || st.hasPrefix("Status:") {
            out((m.id.map { "\($0): " } ?? "") + st + "\n")
        }
    }
    if let f = failure {
        err(f + "\n")
        throw ExitCode(1)
    }
}

/// `cryo push NAME[:TAG]`.
struct Push: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Upload an image to a registry.",
        discussion: "NAME[:TAG]; without a tag, latest. Credentials: --username with --password-stdin (cryo keeps none).")

    @Argument(help: "The image: NAME[:TAG].")
    var name: String

    @OptionGroup var auth: RegistryAuthOptions

    @Flag(name: .shortAndLong, help: "Suppress the progress output.")
    var quiet = false

    func run() throws {
        do {
            let (repo, tag) = Format.splitReference(name)
            let s = try daemon().open("POST", "/images/\(repo)/push", query: [("tag", tag)], headers: [("X-Registry-Auth", try auth.header())])
            defer { s.close() }
            try printProgress(s, quiet: quiet)
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail(error)
        }
    }
}

/// `cryo tag SOURCE TARGET`.
struct Tag: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.")

    @Argument(help: "The image: NAME[:TAG] or ID.")
    var source: String

    @Argument(help: "The new name: NAME[:TAG].")
    var target: String

    func run() throws {
        do {
            let (repo, tag) = Format.splitReference(target)
            try daemon().call("POST", "/images/\(source)/tag", query: [("repo", repo), ("tag", tag)])
        } catch {
            throw fail(error)
        }
    }
}
