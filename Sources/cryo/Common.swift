import ArgumentParser
import CryoClient
import CryoLinux
import Dispatch
import FoundationEssentials
import Glibc

/// Writes to stdout/stderr with write(2), so text and streamed container output never
/// reorder through stdio buffers.
func out(_ s: String) { writeFully(1, Array(s.utf8)) }
func err(_ s: String) { writeFully(2, Array(s.utf8)) }

/// The daemon client: `-H/--host` (main.swift puts it in CRYO_HOST), then CRYO_HOST,
/// then DOCKER_HOST, then /run/cryo/cryo.sock; for tcp://, the TLS identity (ClientTLS).
func daemon() throws -> DaemonClient {
    let env = ProcessInfo.processInfo.environment
    let host = DaemonClient.resolveHost(flag: nil, environment: env)
    return try DaemonClient(host: host, tls: try ClientTLS.identity(host: host, environment: env))
}

/// Prints the error as the docker CLI does and exits with `code`.
func fail(_ error: Error, code: Int32 = 1) -> ExitCode {
    if let e = error as? ExitCode { return e }
    err(errorText(error) + "\n")
    return ExitCode(code)
}

func errorText(_ error: Error) -> String {
    if let c = error as? ClientError { return c.description }
    return "\(error)"
}

/// docker's `reportError` for run/create: "cryo: <message>" and a hint.
func failRun(_ error: Error, command: String, code: Int32 = 125) -> ExitCode {
    if let e = error as? ExitCode { return e }
    var m = errorText(error)
    if !m.hasSuffix(".") { m += "." }
    err("cryo: \(m)\n\nRun 'cryo \(command) --help' for more information\n")
    return ExitCode(code)
}

/// Runs `body` for every name, printing each failure on stderr; exit 1 if any failed
/// (docker stop/kill/rm/... with several containers).
func forEachTarget(_ names: [String], _ body: (String) throws -> Void) throws {
    var failed = false
    for n in names {
        do { try body(n) } catch {
            if let e = error as? ExitCode { throw e }
            err(errorText(error) + "\n")
            failed = true
        }
    }
    if failed { throw ExitCode(1) }
}

func encode<T: Encodable>(_ v: T) throws -> [UInt8] { try encodeJSON(v) }

func path(_ p: String) -> String {
    DaemonClient.percentEncode(p)
}

/// Docker's signal names for kill queries: "SIGINT" → 2 etc. are resolved by the daemon;
/// here we only need names for the signals we proxy.
let proxiedSignals: [(Int32, String)] = [(SIGINT, "INT"), (SIGTERM, "TERM"), (SIGHUP, "HUP"), (SIGQUIT, "QUIT"),
                                          (SIGUSR1, "USR1"), (SIGUSR2, "USR2")]

/// Keeps signal sources alive while an attached session runs.
final class SignalForwarder {
    var sources: [DispatchSourceSignal] = []

    /// docker's sig-proxy: signals the CLI receives become `kill` requests.
    init(container: String, client: DaemonClient) {
        for (sig, name) in proxiedSignals {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                _ = try? client.call("POST", "/containers/\(path(container))/kill", query: [("signal", name)])
            }
            s.resume()
            sources.append(s)
        }
    }

    /// On SIGWINCH, tell the daemon the new terminal size.
    init(resize: @escaping @Sendable () -> Void) {
        signal(SIGWINCH, SIG_IGN)
        let s = DispatchSource.makeSignalSource(signal: SIGWINCH, queue: .global())
        s.setEventHandler { resize() }
        s.resume()
        sources.append(s)
    }

    func cancel() { for s in sources { s.cancel() } }
}

/// One attached session: a hijacked stream, stdin copied in (or closed at once), output
/// copied out (demultiplexed unless tty), the terminal in raw mode for -t on a terminal.
struct AttachedSession {
    let stream: HijackedStream
    let tty: Bool
    let forwardStdin: Bool

    /// Blocks until the daemon ends the output stream.
    func run() throws {
        var saved: termios?
        if tty && forwardStdin && Terminal.isTTY(0) { saved = Terminal.makeRaw(0) }
        defer { if let s = saved { Terminal.restore(0, s) } }
        if forwardStdin {
            let stream = self.stream
            let t = DetachedThread { copyStdin(to: stream) }
            t.start()
        } else {
            stream.closeWrite()
        }
        var sink = OutputSink(tty: tty)
        try sink.pump { try stream.read() }
        stream.close()
    }
}

/// Copies fd 0 into the hijacked stream, then half-closes it (the container sees EOF).
func copyStdin(to stream: HijackedStream) {
    var buf = [UInt8](repeating: 0, count: 32768)
    while true {
        let n = buf.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        do { try stream.write(Array(buf[0..<n])) } catch { return }
    }
    stream.closeWrite()
}

/// Sends the local terminal size (stdout's) to a resize endpoint.
func sendResize(_ client: DaemonClient, _ endpoint: String) {
    guard let size = Terminal.size(1) ?? Terminal.size(0) else { return }
    _ = try? client.call("POST", endpoint, query: [("h", String(size[0])), ("w", String(size[1]))])
}

/// The exit code from a wait response body (`{"StatusCode":N,"Error":...}`).
func waitExitCode(fromWait stream: ResponseStream, client: DaemonClient) throws -> Int32 {
    let body = try stream.readAll()
    stream.close()
    let r = try client.decode(WaitResponseJSON.self, body, what: "wait")
    if let m = r.Error?.Message, !m.isEmpty {
        err("Error waiting for container: \(m)\n")
        return 125
    }
    return r.StatusCode
}

/// Formats JSON arrays the way `docker inspect` does.
func printJSONArray(_ items: [[UInt8]]) {
    if items.isEmpty {
        out("[]\n")
        return
    }
    var joined: [UInt8] = [UInt8(ascii: "[")]
    for (i, it) in items.enumerated() {
        if i > 0 { joined.append(UInt8(ascii: ",")) }
        joined += it
    }
    joined.append(UInt8(ascii: "]"))
    out(Format.indentJSON(joined) + "\n")
}

/// Unix seconds now.
func now() -> Double { Double(time(nil)) }

/// `--format` of the commands that print lists or reports: "json", the default ("table" or
/// nothing) or a Go template as the docker CLI takes it (TemplateOutput in CryoClient).
enum ListFormat {
    static func isJSON(_ format: String?) -> Bool { TemplateOutput.choice(format) == .json }

    /// A custom template (not the default table, not json), or nil.
    static func template(_ format: String?) -> String? {
        if case .template(let t) = TemplateOutput.choice(format) { return t }
        return nil
    }

    /// docker's "-q wins" rule for ps/images/network ls.
    static func warnIfQuiet(_ format: String?, quiet: Bool) {
        if quiet, template(format) != nil {
            err("WARNING: Ignoring custom format, because both --format and --quiet are set.\n")
        }
    }

    /// Rows through a template, as docker's list commands print them; a template error is
    /// reported as docker does ("failed to parse template: …"), exit 1.
    static func printList(_ format: String, rows: [TemplateValue], header: TemplateValue) throws {
        do {
            out(try TemplateOutput.list(format, rows: rows, header: header))
        } catch let e as TemplateError {
            err((e.kind == .parse ? "failed to parse template: " : "failed to execute template: ") + e.message + "\n")
            throw ExitCode(1)
        }
    }

    /// `inspect -f`: checked before anything is looked up; docker's "template parsing error"
    /// with exit 64 for a template that does not parse.
    static func checkInspect(_ format: String?) throws {
        guard let f = format, !f.isEmpty else { return }
        do { _ = try TemplateOutput.inspect(f, items: []) } catch let e as TemplateError {
            err("template parsing error: " + e.message + "\n")
            throw ExitCode(64)
        }
    }

    /// Objects (inspect answers, reports) through `inspect -f`'s template, or the indented
    /// JSON array without one; an execution error exits 1.
    static func printInspect(_ format: String?, items: [[UInt8]]) throws {
        guard let f = format, !f.isEmpty else {
            printJSONArray(items)
            return
        }
        do {
            out(try TemplateOutput.inspect(f, items: items))
        } catch let e as TemplateError {
            err("template parsing error: " + e.message + "\n")
            throw ExitCode(e.kind == .parse ? 64 : 1)
        }
    }

    /// A command's single JSON report (checkpoint create, fork, migrate, info) through a
    /// custom template; false when the format is not a template (the caller prints as before).
    static func printReport(_ format: String?, json: [UInt8]) throws -> Bool {
        guard let t = template(format) else { return false }
        try checkInspect(t)
        try printInspect(t, items: [json.isEmpty ? Array("{}".utf8) : json])
        return true
    }
}
