// Harness for the integration tests: drives the real cryo-runtime binary (and runc, for the
// interop tests) through Foundation's Process.
//
// - `Harness.binary`: $CRYO_RUNTIME_BIN, else <package root>/.build/debug/cryo-runtime.
// - `withEnv { env in … }`: a temp dir /tmp/cryo-it-XXXXXX with a private --root state dir;
//   every container id made through `env.newID` is deleted (`delete --force`), its leftover
//   processes killed and its cgroups removed when the closure returns or throws.
// - `env.makeBundle(args:)`: a bundle with its own copy of a busybox rootfs (built once per test
//   run with scripts/make-busybox-rootfs.sh) and a config.json made by `cryo-runtime spec`.
// - `env.cryo([...])`: run the binary, capture stdout/stderr/exit code.
// - `env.launch(...)`: run the binary with pipes that outlive it (create, run --detach, restore):
//   the runtime hands its own fds 0-2 to the container, so the pipes become the container's stdio.
// - `OutputCollector.waitFor`: poll until output matches, with a timeout that only exists so
//   that a broken runtime cannot hang the suite.
// - `requireRuntime()` / `requireRuntimeAndCRIU()` / `requireRuntimeCRIUAndRunc()`: CryoTestSupport's
//   requirement policy (cancelled locally, failed under CI=true) plus the cryo-runtime binary.
//
// Processes (`Tool`, `Launched`, `OutputCollector`, `waitUntil`), `TempDir`, the busybox rootfs
// (`Fixtures.busyboxRootfs`) and the requirement checks live in CryoTestSupport.

import CryoOCI
import CryoTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Suite root

/// Every integration test lives in a suite nested in this one, so the whole integration suite is
/// serialized: containers, cgroups and CRIU are global state, and the machine has 2 cores.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct CryoIntegration {}

// MARK: - Locations

enum Harness {
    static let binary: String = {
        if let b = ProcessInfo.processInfo.environment["CRYO_RUNTIME_BIN"], !b.isEmpty { return b }
        return TestEnvironment.packageRoot + "/.build/debug/cryo-runtime"
    }()

    static var runc: String? { findExecutable("runc") }
}

// MARK: - Requirements (CryoTestSupport's policy: skipped locally, failed under CI=true)

/// Root and the cryo-runtime binary (a missing binary is a build problem: always a failure).
func requireRuntime(sourceLocation: SourceLocation = #_sourceLocation) throws {
    try requireRoot(sourceLocation: sourceLocation)
    if access(Harness.binary, X_OK) != 0 {
        throw HarnessError("cryo-runtime binary not found at \(Harness.binary) (run `swift build`, or set CRYO_RUNTIME_BIN)")
    }
}

/// Root, the cryo-runtime binary and a working CRIU.
func requireRuntimeAndCRIU(sourceLocation: SourceLocation = #_sourceLocation) throws {
    try requireRuntime(sourceLocation: sourceLocation)
    try requireCRIU(sourceLocation: sourceLocation)
}

/// Root, the cryo-runtime binary, CRIU and runc.
func requireRuntimeCRIUAndRunc(sourceLocation: SourceLocation = #_sourceLocation) throws {
    try requireRuntimeAndCRIU(sourceLocation: sourceLocation)
    try requireExecutable("runc", "scripts/setup.sh installs runc", sourceLocation: sourceLocation)
}

// MARK: - Fixtures built once per test run

extension Fixtures {
    /// integration/fixtures/aio-counter.c compiled statically by scripts/build-test-fixtures.sh.
    static let aioCounter: Result<String, HarnessError> = {
        let dir = cacheDir + "/fixtures"
        do {
            try Tool.check("/bin/bash", [TestEnvironment.packageRoot + "/scripts/build-test-fixtures.sh", dir])
            return .success(dir + "/aio-counter")
        } catch {
            return .failure(HarnessError("building integration/fixtures/aio-counter.c failed: \(error)"))
        }
    }()
}

// MARK: - config.json editing

typealias JSONObject = [String: Any]

extension Dictionary where Key == String, Value == Any {
    /// The value at a path of object keys ("process", "args"), or nil.
    subscript(path path: [String]) -> Any? {
        get {
            var cur: Any? = self
            for k in path { cur = (cur as? JSONObject)?[k] }
            return cur
        }
        set { self = Self.setting(self, path[...], newValue) }
    }

    private static func setting(_ obj: JSONObject, _ path: ArraySlice<String>, _ value: Any?) -> JSONObject {
        var o = obj
        guard let first = path.first else { return o }
        if path.count == 1 {
            o[first] = value
        } else {
            o[first] = setting(o[first] as? JSONObject ?? [:], path.dropFirst(), value)
        }
        return o
    }

    mutating func appendMount(destination: String, type: String, source: String, options: [String]) {
        var mounts = self["mounts"] as? [Any] ?? []
        mounts.append(["destination": destination, "type": type, "source": source, "options": options])
        self["mounts"] = mounts
    }
}

func parseJSON(_ text: String) -> Any? {
    try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
}

// MARK: - Bundles

struct TestBundle {
    let path: String
    var rootfs: String { path + "/rootfs" }
    var configPath: String { path + "/config.json" }

    func readConfig() throws -> JSONObject {
        let data = try Data(contentsOf: URL(fileURLWithPath: configPath))
        guard let o = try JSONSerialization.jsonObject(with: data) as? JSONObject else {
            throw HarnessError("\(configPath) is not a JSON object")
        }
        return o
    }

    func writeConfig(_ config: JSONObject) throws {
        let data = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: configPath))
    }

    func editConfig(_ edit: (inout JSONObject) throws -> Void) throws {
        var c = try readConfig()
        try edit(&c)
        try writeConfig(c)
    }
}

// MARK: - Shell snippets for container processes

enum Scripts {
    /// Prints PREFIX0, PREFIX1, … one per line, every `interval` seconds, forever.
    static func counter(prefix: String = "", interval: String = "0.1") -> [String] {
        ["sh", "-c", "i=0; while true; do echo \(prefix)$i; i=$((i+1)); sleep \(interval); done"]
    }
}

/// The numbers on complete lines "PREFIX<n>" of `text`, in order.
func numbers(in text: String, prefix: String = "") -> [Int] {
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    lines.removeLast()  // an incomplete line, or "" after the final newline
    return lines.compactMap { l in
        l.hasPrefix(prefix) ? Int(l.dropFirst(prefix.count).trimmingCharacters(in: .whitespaces)) : nil
    }
}

// MARK: - The per-test environment

/// A started container: its id, bundle and the `create` (or `run --detach`, or `restore`)
/// process whose stdout/stderr pipes are now the container's.
struct TestContainer {
    let id: String
    let bundle: TestBundle
    let io: Launched
    var stdout: OutputCollector { io.stdout }
    var stderr: OutputCollector { io.stderr }
}

// @unchecked: the mutable state is guarded by `lock` (NSLock, which the checker cannot see).
final class TestEnv: @unchecked Sendable {
    let dir: String
    let stateRoot: String
    let runcRoot: String
    private let lock = NSLock()
    private var cryoIDs: [String] = []
    private var runcIDs: [String] = []
    private var cgroupPaths: [String] = []   // extra cgroups (custom cgroupsPath) to remove
    private var launched: [Launched] = []
    private var counter = 0

    init() throws {
        dir = try TempDir("cryo-it").path
        stateRoot = dir + "/state"
        runcRoot = dir + "/runc-state"
    }

    /// A unique container id, remembered for cleanup (as a cryo-runtime container).
    func newID(_ tag: String) -> String {
        lock.withLock {
            counter += 1
            let id = "it-\(tag)-\(counter)-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
            cryoIDs.append(id)
            return id
        }
    }

    /// A unique container id for a container runc manages.
    func newRuncID(_ tag: String) -> String {
        lock.withLock {
            counter += 1
            let id = "it-runc-\(tag)-\(counter)-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
            runcIDs.append(id)
            return id
        }
    }

    /// Also remove this cgroup (relative to each hierarchy) at cleanup.
    func trackCgroup(_ path: String) { lock.withLock { cgroupPaths.append(path) } }

    func path(_ name: String) -> String { dir + "/" + name }

    // MARK: running the binaries

    func cryoArgs(_ args: [String]) -> [String] { ["--root", stateRoot] + args }

    /// Runs cryo-runtime to completion (stdin /dev/null).
    func cryo(_ args: [String], timeout: Double = 60) throws -> CommandResult {
        try Tool.run(Harness.binary, cryoArgs(args), timeout: timeout)
    }

    /// Runs cryo-runtime and requires exit status 0.
    @discardableResult
    func cryoOK(_ args: [String], timeout: Double = 60) throws -> CommandResult {
        let r = try cryo(args, timeout: timeout)
        guard r.succeeded else { throw HarnessError("expected success: \(r)") }
        return r
    }

    /// Starts cryo-runtime with pipes (by default) for stdio; the pipes are handed to the
    /// container by create / run --detach / restore. The process is killed at cleanup if needed.
    func launchCryo(_ args: [String], stdin: Stdio = .pipe, stdout: Stdio = .pipe, stderr: Stdio = .pipe) throws -> Launched {
        let l = try Tool.launch(Harness.binary, cryoArgs(args), stdin: stdin, stdout: stdout, stderr: stderr)
        lock.withLock { launched.append(l) }
        return l
    }

    func runcArgs(_ args: [String]) -> [String] { ["--root", runcRoot] + args }

    func runc(_ args: [String], timeout: Double = 60) throws -> CommandResult {
        guard let runc = Harness.runc else { throw HarnessError("runc is not installed") }
        return try Tool.run(runc, runcArgs(args), timeout: timeout)
    }

    func launchRunc(_ args: [String], stdin: Stdio = .pipe, stdout: Stdio = .pipe, stderr: Stdio = .pipe) throws -> Launched {
        guard let runc = Harness.runc else { throw HarnessError("runc is not installed") }
        let l = try Tool.launch(runc, runcArgs(args), stdin: stdin, stdout: stdout, stderr: stderr)
        lock.withLock { launched.append(l) }
        return l
    }

    // MARK: bundles

    /// Makes DIR/NAME with a copy of the busybox rootfs and a config.json from `cryo-runtime spec`
    /// with process.terminal = false and process.args = `args`; `edit` may change anything else.
    func makeBundle(_ name: String = "bundle", args: [String], edit: (inout JSONObject) throws -> Void = { _ in }) throws -> TestBundle {
        let rootfs = try Fixtures.busyboxRootfs.get()
        let b = TestBundle(path: path(name))
        guard !FileManager.default.fileExists(atPath: b.path) else { throw HarnessError("bundle \(b.path) already exists: give it another name") }
        try FileManager.default.createDirectory(atPath: b.path, withIntermediateDirectories: true)
        try Tool.check("/bin/cp", ["-a", rootfs, b.rootfs])
        let r = try Tool.run(Harness.binary, ["spec", "--bundle", b.path])
        guard r.succeeded else { throw HarnessError("cryo-runtime spec failed: \(r)") }
        try b.editConfig { c in
            c[path: ["process", "terminal"]] = false
            c[path: ["process", "args"]] = args
            try edit(&c)
        }
        return b
    }

    // MARK: containers

    /// `create` with pipes for the container's stdio, then `start`. Throws (failing the test) with
    /// the runtime's output if either step fails.
    func startContainer(_ bundle: TestBundle, id: String, stdout: Stdio = .pipe) throws -> TestContainer {
        let c = try createContainer(bundle, id: id, stdout: stdout)
        try cryoOK(["start", id])
        return c
    }

    func createContainer(_ bundle: TestBundle, id: String, stdout: Stdio = .pipe) throws -> TestContainer {
        let l = try launchCryo(["create", "--bundle", bundle.path, id], stdout: stdout)
        let r = l.result()
        guard r.succeeded else { throw HarnessError("create failed: \(r)") }
        return TestContainer(id: id, bundle: bundle, io: l)
    }

    /// The container's state JSON (`state ID`), or nil with the failed command.
    func state(_ id: String) throws -> (JSONObject?, CommandResult) {
        let r = try cryo(["state", id])
        return (r.succeeded ? parseJSON(r.stdout) as? JSONObject : nil, r)
    }

    func status(_ id: String) throws -> String? {
        try state(id).0?["status"] as? String
    }

    func initPid(_ id: String) throws -> Int32? {
        (try state(id).0?["pid"] as? NSNumber)?.int32Value
    }

    /// Polls `state` until the status is `want`.
    @discardableResult
    func waitForStatus(_ id: String, _ want: String, timeout: Double = 15) throws -> Bool {
        var ok = false
        waitUntil(timeout: timeout, interval: 0.05) {
            ok = ((try? self.status(id)) ?? nil) == want
            return ok
        }
        return ok
    }

    /// `exec ID ARGS…` run to completion.
    func exec(_ id: String, _ args: [String], timeout: Double = 30) throws -> CommandResult {
        try cryo(["exec", id] + args, timeout: timeout)
    }

    /// The pids `ps --format json ID` reports.
    func psPids(_ id: String) throws -> [Int32] {
        let r = try cryoOK(["ps", "--format", "json", id])
        guard let arr = parseJSON(r.stdout) as? [Any] else { throw HarnessError("ps output is not a JSON array: \(r)") }
        return arr.compactMap { ($0 as? NSNumber)?.int32Value }
    }

    // MARK: cleanup

    /// Deletes every container this env made, kills what is left in their cgroups, removes the
    /// cgroups and the temp dir. Problems are recorded as Issues: a runtime that cannot clean up
    /// after itself is a bug worth failing on.
    func cleanup() {
        let (cryoIDs, runcIDs, cgroupPaths, launched) = lock.withLock { (self.cryoIDs, self.runcIDs, self.cgroupPaths, self.launched) }
        for id in cryoIDs {
            guard let st = try? state(id), st.0 != nil else { continue }
            if let r = try? cryo(["delete", "--force", id], timeout: 30), !r.succeeded {
                Issue.record("cleanup: \(r)")
            }
        }
        for id in runcIDs {
            _ = try? runc(["delete", "--force", id], timeout: 30)
        }
        for id in cryoIDs {
            let leftovers = CgroupCleaner.killAndRemove("cryo/" + id)
            if !leftovers.isEmpty { Issue.record("cleanup: container \(id) left processes \(leftovers) in its cgroup after delete --force") }
        }
        for id in runcIDs { _ = CgroupCleaner.killAndRemove(id) }
        for p in cgroupPaths { _ = CgroupCleaner.killAndRemove(p) }
        for l in launched { l.kill() }
        // Nothing of ours may stay mounted under the temp dir (a failed restore could leave one).
        if let mi = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) {
            let points = mi.split(separator: "\n").compactMap { line -> String? in
                let f = line.split(separator: " ")
                return f.count > 4 && f[4].hasPrefix(dir + "/") ? String(f[4]) : nil
            }
            for m in points.reversed() { umount2(m, Int32(MNT_DETACH)) }
        }
        _ = try? Tool.run("/bin/rm", ["-rf", "--one-file-system", dir], timeout: 60)
    }
}

/// Runs `body` with a fresh TestEnv and always cleans up, whether `body` returns or throws.
func withEnv<T>(_ body: (TestEnv) throws -> T) throws -> T {
    let env = try TestEnv()
    defer { env.cleanup() }
    return try body(env)
}

enum CgroupCleaner {
    /// Every cgroup hierarchy mount point (v1 hierarchies and cgroup2).
    static func mountPoints() -> [String] {
        guard let mi = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return [] }
        return mi.split(separator: "\n").compactMap { line in
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { return nil }
            let l = halves[0].split(separator: " "), r = halves[1].split(separator: " ")
            guard l.count > 4, let fs = r.first, fs == "cgroup" || fs == "cgroup2" else { return nil }
            return String(l[4])
        }
    }

    /// The directory of cgroup `rel` in each hierarchy where it exists.
    static func dirs(_ rel: String) -> [String] {
        mountPoints().map { $0 + "/" + rel }.filter { FileManager.default.fileExists(atPath: $0) }
    }

    /// Thaws, SIGKILLs every process in cgroup `rel` (and below), removes the directories.
    /// Returns the pids that were still there.
    static func killAndRemove(_ rel: String) -> [Int32] {
        let ds = dirs(rel)
        guard !ds.isEmpty else { return [] }
        var found = Set<Int32>()
        for d in ds {
            if FileManager.default.fileExists(atPath: d + "/freezer.state") {
                try? "THAWED".write(toFile: d + "/freezer.state", atomically: false, encoding: .utf8)
            }
        }
        for _ in 0..<200 {
            var any = false
            for d in ds {
                for p in procs(d) {
                    found.insert(p)
                    any = true
                    kill(p, SIGKILL)
                }
            }
            if !any { break }
            usleep(10_000)
        }
        for d in ds {
            // Children first (deepest paths first).
            let sub = ((FileManager.default.enumerator(atPath: d)?.allObjects as? [String]) ?? [])
                .map { d + "/" + $0 }
                .filter { var isDir: ObjCBool = false; return FileManager.default.fileExists(atPath: $0, isDirectory: &isDir) && isDir.boolValue }
                .sorted { $0.count > $1.count }
            for s in sub { rmdir(s) }
            for _ in 0..<50 {
                if rmdir(d) == 0 || errno == ENOENT { break }
                usleep(10_000)
            }
        }
        return found.sorted()
    }

    static func procs(_ dir: String) -> [Int32] {
        let text = (try? String(contentsOfFile: dir + "/cgroup.procs", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
    }
}

// MARK: - Small file helpers

/// True while `pid` exists and is not a zombie (PID 1 here reaps orphans only about once a second).
func isRunning(pid: Int32) -> Bool {
    guard let stat = readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
    return state != nil && state != "Z" && state != "X"
}

func readFile(_ path: String) -> String? {
    try? String(contentsOfFile: path, encoding: .utf8)
}

func writeFile(_ path: String, _ text: String, mode: Int? = nil) throws {
    try text.write(toFile: path, atomically: false, encoding: .utf8)
    if let mode { chmod(path, mode_t(mode)) }
}

/// Every regular file under `dir` (relative path → contents), to check a directory is unchanged.
func snapshotDirectory(_ dir: String) -> [String: Data] {
    var out: [String: Data] = [:]
    let fm = FileManager.default
    for rel in (fm.enumerator(atPath: dir)?.allObjects as? [String]) ?? [] {
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: dir + "/" + rel, isDirectory: &isDir), !isDir.boolValue {
            out[rel] = fm.contents(atPath: dir + "/" + rel) ?? Data()
        }
    }
    return out
}

// MARK: - Podman requirement (PodmanInteropTests)

/// Root, the cryo-runtime binary, CRIU, podman and conmon.
func requireRuntimeCRIUAndPodman(sourceLocation: SourceLocation = #_sourceLocation) throws {
    try requireRuntimeAndCRIU(sourceLocation: sourceLocation)
    for tool in ["podman", "conmon"] {
        try requireExecutable(tool, "scripts/setup.sh installs podman and conmon", sourceLocation: sourceLocation)
    }
}
