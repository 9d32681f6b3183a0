@testable import CryoAPI
import CryoEngine
import CryoImages
import CryoLinux
import CryoMonitor
import CryoNetwork
import CryoRuntime
import FoundationEssentials
import Glibc
import Testing

/// The error model: one failure type whose code (never its text) decides the HTTP status
/// and the 126/127 exit codes, with causes kept as a chain.
@Suite struct ErrorModelTests {
    @Test func everyCodeHasItsStatus() {
        #expect(HTTPStatus.of(.invalidArgument) == 400)
        #expect(HTTPStatus.of(.invalidArchive) == 400)
        #expect(HTTPStatus.of(.notFound) == 404)
        #expect(HTTPStatus.of(.conflict) == 409)
        #expect(HTTPStatus.of(.notModified) == 304)
        #expect(HTTPStatus.of(.unsupported) == 501)
        #expect(HTTPStatus.of(.unavailable) == 503)
        #expect(HTTPStatus.of(.internal) == 500)
        #expect(HTTPStatus.of(.commandNotRunnable) == 500)
        #expect(HTTPStatus.of(CryoFailure.Code("some-module-code")) == 500)
    }

    @Test func whatHandlersThrowBecomesAFailure() throws {
        struct Body: Decodable { var n: Int }
        let decoding = #expect(throws: DecodingError.self) { try JSONDecoder().decode(Body.self, from: Data("{\"n\":\"x\"}".utf8)) }
        let f = HTTPStatus.failure(try #require(decoding))
        #expect(f.code == .invalidArgument)
        #expect(f.description.contains("n"))
        #expect(HTTPStatus.failure(SyscallError("open", "/x", errno: ENOENT)).code == .internal)
        #expect(HTTPStatus.failure(EngineError.noSuchContainer("c")).code == .notFound)
        #expect(HTTPStatus.failure(FailureReport(code: .conflict, message: "m")).code == .conflict)
    }

    @Test func causesChainAndWrappingKeepsTheCode() {
        let root = SyscallError("open", "/x", errno: ENOENT)
        let inner = CryoFailure(.notFound, "reading the record", cause: root)
        let outer = CryoFailure("starting container c", cause: inner)
        #expect(outer.code == .notFound)
        #expect(outer.description == "starting container c: reading the record: open /x: No such file or directory")
        #expect(outer.chain.count == 3)
        #expect(outer.rootErrno == ENOENT)
        #expect(outer.has(.notFound) && !outer.has(.conflict))
        #expect(CryoFailure("step", cause: root).code == .internal)
        #expect(CryoFailure(.conflict, "no cause").description == "no cause")
        #expect(CryoFailure(.conflict, "no cause").rootErrno == nil)
    }

    @Test func aReportCrossesProcessesWithItsCodeAndErrno() throws {
        let f = CryoFailure(.commandNotRunnable, "exec: \"/bin/x\": stat /bin/x", cause: CommandErrno(EACCES))
        let data = try JSONEncoder().encode(InitMessage.failed(f))
        let m = try JSONDecoder().decode(InitMessage.self, from: data)
        #expect(m.error == "exec: \"/bin/x\": stat /bin/x: permission denied")
        let again = m.failure(step: "container init")
        #expect(again.code == .commandNotRunnable)
        #expect(again.rootErrno == EACCES)
        #expect(again.description == "container init: exec: \"/bin/x\": stat /bin/x: permission denied")
        // And through the monitor's ready line.
        let ready = try JSONDecoder().decode(MonitorReady.self, from: JSONEncoder().encode(MonitorReady.failed(again)))
        #expect(ready.failure(step: "starting container c").map(CommandExit.status(of:)) == 126)
        #expect(MonitorReady(monitorPid: 1, initPid: 2).failure(step: "x") == nil)
        // A ready line from an older monitor: text only, cryod's failure.
        let old = try JSONDecoder().decode(MonitorReady.self, from: Data(#"{"error":"boom"}"#.utf8))
        #expect(old.failure(step: "s")?.code == .internal)
    }

    @Test func exitCodesComeFromTheErrnoNotTheText() {
        let missing = CryoFailure(.commandNotRunnable, "exec: \"x\"", cause: CommandErrno(ENOENT, text: "executable file not found in $PATH"))
        #expect(CommandExit.status(of: missing) == 127)
        // The path says "no such file or directory", the errno says it exists: 126.
        let oddName = CryoFailure(.commandNotRunnable, "exec: \"/no such file or directory\": stat /no such file or directory",
                                  cause: CommandErrno(EACCES))
        #expect(CommandExit.status(of: oddName) == 126)
        let directory = CryoFailure(.commandNotRunnable, "exec: \"/etc\"", cause: SyscallError("execve", "/etc", errno: EACCES))
        #expect(CommandExit.status(of: directory) == 126)
        // Not the command: whatever the text says, no 126/127.
        let other = CryoFailure(.internal, "restoring: open /img/pages-1.img: no such file or directory; permission denied",
                                cause: SyscallError("open", "/img/pages-1.img", errno: ENOENT))
        #expect(CommandExit.status(of: other) == nil)
        #expect(CommandExit.status(of: CryoFailure("wrapped", cause: missing)) == 127)
        #expect(CommandExit.status(of: SyscallError("open", "/x", errno: ENOENT)) == nil)
    }

    @Test func exitRecordsOfOlderMonitorsStillDecode() throws {
        let r = try JSONDecoder().decode(ExitRecord.self, from: Data(#"{"exitCode":3,"finishedAt":"t"}"#.utf8))
        #expect(r == ExitRecord(exitCode: 3, finishedAt: "t"))
        #expect(r.recordError == nil)
    }

    @Test func imageLoadFailuresAreTheArchivesOrCryods() {
        // What the engine makes of a failed load: the archive's fault 400, the host's 500.
        func status(_ e: any Error) -> Int { HTTPStatus.of(CryoFailure("loading the image archive failed", cause: e).code) }
        #expect(status(CryoFailure(.invalidArchive, "manifest.json lists no images")) == 400)
        #expect(status(SyscallError("write", "/var/lib/cryo/images/tmp/x", errno: ENOSPC)) == 500)
        #expect(status(SyscallError("mkdir", "/var/lib/cryo/images/tmp", errno: EACCES)) == 500)
        #expect(SyscallError("w", errno: EIO).isHostResourceFailure)
        #expect(!SyscallError("securejoin", errno: ELOOP).isHostResourceFailure)
    }
}

@Suite struct CodedErrorTests {
    @Test func networkRefusalsKeepTheirStatuses() {
        #expect(HTTPStatus.failure(NetworkError.notFound("n")).code == .notFound)
        #expect(HTTPStatus.of(HTTPStatus.failure(NetworkError.nameInUse("n")).code) == 409)
        #expect(HTTPStatus.of(HTTPStatus.failure(NetworkError.invalidIP("x", "y")).code) == 400)
        #expect(HTTPStatus.failure(NetworkError.nameInUse("n")).description == NetworkError.nameInUse("n").description)
        // Wrapped, the code is still the refusal's.
        #expect(CryoFailure("attaching c", cause: NetworkError.ambiguous("n")).code == .conflict)
    }

    @Test func runtimeRefusalsHaveCodes() {
        #expect(RuntimeError.notFound("c").code == .notFound)
        #expect(RuntimeError.exists("c").code == .conflict)
        #expect(RuntimeError.wrongState("c", .stopped, "container not running").description == "container \"c\" is stopped: container not running")
    }
}
