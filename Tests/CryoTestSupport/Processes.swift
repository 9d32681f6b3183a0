// Running processes for tests: `Tool.run` (to completion, output captured), `Tool.launch`
// (stdio pipes collected in the background, which may outlive the process), `waitUntil` (polling
// with a timeout that only keeps a broken program from hanging the suite).

import Foundation

#if canImport(Glibc)
    import Glibc
#endif
// MARK: - Output collection

/// Reads a pipe on its own thread until EOF, so the test can poll what arrived so far.
/// EOF only comes when every writer is gone — for a container's stdout that means the
/// container (and anything it handed the pipe to) has exited.
// @unchecked: the mutable state is guarded by `lock` (NSLock, which the checker cannot see).
public final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private var eof = false
    private let fd: Int32

    /// Takes over the read end of `pipe` (the Pipe's own handle is closed).
    public init(_ pipe: Pipe) {
        let h = pipe.fileHandleForReading
        fd = fcntl(h.fileDescriptor, F_DUPFD_CLOEXEC, 3)
        try? h.close()
        let t = Thread { [self] in self.readLoop() }
        t.name = "OutputCollector"
        t.start()
    }

    /// A collector that reads nothing (for stdio that is not a pipe).
    public init(empty: ()) {
        fd = -1
        eof = true
    }

    private func readLoop() {
        guard fd >= 0 else { return }
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                lock.withLock { data.append(contentsOf: buf[0..<n]) }
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                break
            }
        }
        close(fd)
        lock.withLock { eof = true }
    }

    public var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
    public var isEOF: Bool { lock.withLock { eof } }

    /// Polls until `condition(text)` holds; false when `timeout` seconds pass first.
    @discardableResult
    public func waitFor(timeout: Double = 15, _ condition: (String) -> Bool) -> Bool {
        waitUntil(timeout: timeout) { condition(self.text) }
    }

    /// Polls until the output contains `needle`.
    @discardableResult
    public func waitFor(contains needle: String, timeout: Double = 15) -> Bool {
        waitFor(timeout: timeout) { $0.contains(needle) }
    }

    /// Polls until every writer of the pipe is gone.
    @discardableResult
    public func waitForEOF(timeout: Double = 15) -> Bool {
        waitUntil(timeout: timeout) { self.isEOF }
    }
}

/// Polls `condition` every `interval` seconds; false if it does not hold within `timeout`.
/// The timeout only keeps a broken runtime from hanging the suite; it is not a speed assertion.
@discardableResult
public func waitUntil(timeout: Double = 15, interval: Double = 0.02, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if condition() { return true }
        if Date() >= deadline { return false }
        usleep(useconds_t(interval * 1_000_000))
    }
}

// MARK: - Processes

/// What a finished command produced.
public struct CommandResult: CustomStringConvertible {
    public var command: [String]
    public var status: Int32          // exit code; 128+N when killed by signal N; -1 on timeout
    public var stdout: String
    public var stderr: String
    public var timedOut = false

    public init(command: [String], status: Int32, stdout: String, stderr: String, timedOut: Bool = false) {
        self.command = command
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
        self.timedOut = timedOut
    }

    public var succeeded: Bool { status == 0 && !timedOut }
    public var output: String { stdout + stderr }

    public var description: String {
        var s = "`\(command.joined(separator: " "))` → " + (timedOut ? "TIMED OUT" : "exit \(status)")
        if !stdout.isEmpty { s += "\n  stdout: \(stdout.trimmingCharacters(in: .whitespacesAndNewlines))" }
        if !stderr.isEmpty { s += "\n  stderr: \(stderr.trimmingCharacters(in: .whitespacesAndNewlines))" }
        return s
    }
}

/// Where a launched process's stdin/stdout/stderr go.
public enum Stdio {
    case pipe                 // a fresh pipe (stdin: the write end is closed right after launch)
    case file(String)         // a host file, created/truncated (stdout/stderr) or read (stdin)
    case null                 // /dev/null
}

/// A running (or finished) process whose stdout/stderr are collected from pipes. The pipes may
/// outlive the process: the runtime gives its own fds 0-2 to the container it creates.
// @unchecked: `exitStatus` is guarded by `lock`; Process is used only through its thread-safe calls.
public final class Launched: @unchecked Sendable {
    public let command: [String]
    public let process: Process
    public let stdout: OutputCollector
    public let stderr: OutputCollector
    private let lock = NSLock()
    private var exitStatus: Int32?

    public init(command: [String], process: Process, stdout: OutputCollector, stderr: OutputCollector) {
        self.command = command
        self.process = process
        self.stdout = stdout
        self.stderr = stderr
    }

    public var pid: Int32 { process.processIdentifier }

    /// Waits for the process (not its pipes); nil if it is still running after `timeout`.
    public func waitForExit(timeout: Double = 60) -> Int32? {
        if let s = lock.withLock({ exitStatus }) { return s }
        guard waitUntil(timeout: timeout, interval: 0.005, { !process.isRunning }) else { return nil }
        let s: Int32 = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        lock.withLock { exitStatus = s }
        return s
    }

    /// Waits for exit (killing the process on timeout) and returns what it printed so far.
    /// Does not wait for EOF: a container may still hold the pipes.
    public func result(timeout: Double = 60) -> CommandResult {
        let status = waitForExit(timeout: timeout)
        if status == nil { kill() }
        return CommandResult(command: command, status: status ?? -1, stdout: stdout.text, stderr: stderr.text,
                             timedOut: status == nil)
    }

    public func kill() {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        _ = waitForExit(timeout: 5)
    }
}

public enum Tool {
    /// Starts `exe args` with the given stdio. stdout/stderr pipes are collected in the background.
    public static func launch(_ exe: String, _ args: [String], stdin: Stdio = .pipe, stdout: Stdio = .pipe,
                       stderr: Stdio = .pipe, cwd: String? = nil, environment: [String: String]? = nil) throws -> Launched {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        if let environment { p.environment = environment }

        var toClose: [FileHandle] = []
        var stdinPipe: Pipe?
        switch stdin {
        case .pipe:
            let pp = Pipe()
            stdinPipe = pp
            p.standardInput = pp
        case .file(let path):
            guard let h = FileHandle(forReadingAtPath: path) else { throw HarnessError("cannot open \(path)") }
            toClose.append(h)
            p.standardInput = h
        case .null:
            p.standardInput = FileHandle.nullDevice
        }
        func output(_ s: Stdio) throws -> (Any, Pipe?) {
            switch s {
            case .pipe:
                let pp = Pipe()
                return (pp, pp)
            case .file(let path):
                guard FileManager.default.createFile(atPath: path, contents: nil),
                      let h = FileHandle(forWritingAtPath: path) else { throw HarnessError("cannot create \(path)") }
                toClose.append(h)
                return (h, nil)
            case .null:
                return (FileHandle.nullDevice, nil)
            }
        }
        let (outObj, outPipe) = try output(stdout)
        let (errObj, errPipe) = try output(stderr)
        p.standardOutput = outObj
        p.standardError = errObj
        try p.run()
        // Our copies of the child's ends: close them, so EOF means "every other writer is gone".
        for h in toClose { try? h.close() }
        if let stdinPipe { try? stdinPipe.fileHandleForWriting.close() }
        try? outPipe?.fileHandleForWriting.close()
        try? errPipe?.fileHandleForWriting.close()
        return Launched(command: [exe] + args, process: p,
                        stdout: outPipe.map { OutputCollector($0) } ?? OutputCollector(empty: ()),
                        stderr: errPipe.map { OutputCollector($0) } ?? OutputCollector(empty: ()))
    }

    /// Runs `exe args` to completion and captures its output. After the process exits, waits a
    /// little for EOF on its pipes (a foreground container's output drains then).
    public static func run(_ exe: String, _ args: [String], timeout: Double = 60, stdin: Stdio = .null,
                    cwd: String? = nil) throws -> CommandResult {
        let l = try launch(exe, args, stdin: stdin, cwd: cwd)
        var r = l.result(timeout: timeout)
        l.stdout.waitForEOF(timeout: 5)
        l.stderr.waitForEOF(timeout: 5)
        r.stdout = l.stdout.text
        r.stderr = l.stderr.text
        return r
    }

    /// Runs a command that must succeed (setup steps: cp, mkdir, scripts).
    @discardableResult
    public static func check(_ exe: String, _ args: [String], timeout: Double = 120) throws -> CommandResult {
        let r = try run(exe, args, timeout: timeout)
        guard r.succeeded else { throw HarnessError("setup command failed: \(r)") }
        return r
    }
}
