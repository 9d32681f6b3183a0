import CRIURPC
import CryoTestSupport
import Testing
@testable import CryoCRIU
@testable import CryoLinux

/// A CRIU 4.2 dump.log of a failed checkpoint: the harmless RLIMIT_NOFILE
/// error comes first (it is what cr_errmsg reports), the real one later.
private let dumpLog = """
(00.000000) Unable to get $HOME directory, local configuration file will not be used.
(00.000033) Version: 4.2 (gitid 0)
(00.000041) Running on debian Linux 6.16.3+deb13-amd64 #1 SMP PREEMPT_DYNAMIC x86_64
(00.000046) Would overwrite RPC settings with values from /etc/criu/runc.conf
(00.000061) Loaded kdat cache from /run/criu/criu.kdat
(00.000112) Error (criu/util.c:1564): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted
(00.000140) rlimit: RLIMIT_NOFILE unlimited for self
(00.000402) ========================================
(00.000407) Dumping processes (pid: 41235 comm: sh)
(00.000409) ========================================
(00.000418) Freezing tasks into 1 cgroup(s)
(00.001002) cg: Dumping 1 sets
(00.031877) Dumping opened files (pid: 41235)
(00.031880) ----------------------------------------
(00.031922) Dumping path for 3 fd via self 45 [/data/out.log]
(00.031950) Error (criu/files-reg.c:1790): Can't lookup mount=412 for fd=3 path=/data/out.log
(00.031971) Error (criu/cr-dump.c:1652): Dump files (pid: 41235) failed with -1
(00.032410) Unfreezing tasks into 1
(00.032415) 	Unseizing 41235 into 2
(00.032980) Error (criu/cr-dump.c:2098): Dumping FAILED.
"""

@Suite struct CRIULogTests {
    @Test func errorLinesSkipTheHarmlessRlimitError() {
        let lines = CRIULog.errorLines(dumpLog)
        #expect(lines == [
            "(00.031950) Error (criu/files-reg.c:1790): Can't lookup mount=412 for fd=3 path=/data/out.log",
            "(00.031971) Error (criu/cr-dump.c:1652): Dump files (pid: 41235) failed with -1",
            "(00.032980) Error (criu/cr-dump.c:2098): Dumping FAILED.",
        ])
        #expect(!lines.contains { $0.contains("RLIMIT") })
    }

    @Test func errorLinesKeepsTheLastOnes() {
        #expect(CRIULog.errorLines(dumpLog, limit: 1) == ["(00.032980) Error (criu/cr-dump.c:2098): Dumping FAILED."])
        #expect(CRIULog.errorLines(dumpLog, limit: 2).count == 2)
        #expect(CRIULog.errorLines("(00.1) all fine\n(00.2) Dumping finished successfully") == [])
        #expect(CRIULog.errorLines("") == [])
    }

    @Test func reasonIsTheFirstRealErrorNotCrErrmsg() throws {
        let t = try TempDir("cryo-criulog")
        defer { t.remove() }
        let log = try t.file("dump.log", dumpLog)
        var resp = criu_resp()
        resp.crErrmsg = "rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted"
        #expect(CRIULog.reason(resp, logPath: log) == "Can't lookup mount=412 for fd=3 path=/data/out.log")
    }

    @Test func reasonForATCPDump() throws {
        let t = try TempDir("cryo-criulog")
        defer { t.remove() }
        let log = try t.file("dump.log", """
        (00.000112) Error (criu/util.c:1564): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted
        (00.020100) Error (criu/sk-inet.c:191): inet: Connected TCP socket, consider using --tcp-established option.
        (00.020300) Error (criu/cr-dump.c:1652): Dump files (pid: 7) failed with -1
        (00.020980) Error (criu/cr-dump.c:2098): Dumping FAILED.
        """)
        #expect(CRIULog.reason(criu_resp(), logPath: log)
                == "inet: Connected TCP socket, consider using --tcp-established option.")
    }

    @Test func reasonIsTheRootCauseNotItsConsequences() throws {
        // A restore that fails: the first real error is the cause, later ones follow from it.
        let t = try TempDir("cryo-criulog")
        defer { t.remove() }
        let log = try t.file("restore.log", """
        (00.000120) Error (criu/util.c:1564): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted
        (00.012031) Error (criu/mount.c:1918): mnt: Can't mount at ./sys/fs/cgroup/cpu,cpuacct: No such file or directory
        (00.012090) Error (criu/mount.c:2211): mnt: Can't create a root mount namespace
        (00.012311) Error (criu/cr-restore.c:1480): 4711 exited, status=1
        (00.020950) Error (criu/cr-restore.c:2447): Restoring FAILED.
        """)
        #expect(CRIULog.reason(criu_resp(), logPath: log)
                == "mnt: Can't mount at ./sys/fs/cgroup/cpu,cpuacct: No such file or directory")
    }

    @Test func reasonFallsBackToCrErrmsg() throws {
        var resp = criu_resp()
        #expect(CRIULog.reason(resp, logPath: "/nonexistent-cryo-unit/dump.log") == "no reason given")
        resp.crErrmsg = "Dumping FAILED"
        #expect(CRIULog.reason(resp, logPath: "/nonexistent-cryo-unit/dump.log") == "Dumping FAILED")
        // A log with only summary lines has no better reason either.
        let t = try TempDir("cryo-criulog")
        defer { t.remove() }
        let log = try t.file("dump.log", "(00.1) Error (criu/cr-dump.c:2098): Dumping FAILED.\n")
        #expect(CRIULog.reason(resp, logPath: log) == "Dumping FAILED")
    }

    @Test func reasonWithoutLocationKeepsTheWholeLine() throws {
        let t = try TempDir("cryo-criulog")
        defer { t.remove() }
        let log = try t.file("restore.log", "(00.5) can't mount something\n")
        #expect(CRIULog.reason(criu_resp(), logPath: log) == "(00.5) can't mount something")
    }

    @Test func excerpt() throws {
        let t = try TempDir("cryo-criulog")
        defer { t.remove() }
        let log = try t.file("dump.log", dumpLog)
        let text = CRIULog.excerpt(logPath: log)
        #expect(text.contains("  (00.031950) Error (criu/files-reg.c:1790): Can't lookup mount=412"))
        #expect(text.hasSuffix("\n  (full log: \(log))"))
        #expect(!text.contains("RLIMIT"))
        #expect(CRIULog.excerpt(logPath: t.at("missing.log")) == "(no CRIU log at \(t.at("missing.log")))")
        let clean = try t.file("ok.log", "(00.1) fine\n")
        #expect(CRIULog.excerpt(logPath: clean) == "(see \(clean))")
    }
}

@Suite struct CRIUVersionTests {
    private func v(_ a: Int, _ b: Int, _ c: Int) -> CRIUVersion { CRIUVersion(major: a, minor: b, sublevel: c) }

    @Test func numberAndOrdering() {
        #expect(v(4, 2, 1).number == 40201)
        #expect(v(3, 17, 0).number == 31700)
        #expect(v(4, 1, 1) < v(4, 2, 0))
        #expect(v(4, 2, 0) < v(4, 2, 1))
        #expect(v(3, 17, 1) < v(4, 0, 0))
        #expect(v(4, 9, 9) < v(4, 10, 0))
        #expect(!(v(4, 2, 0) < v(4, 2, 0)))
        #expect(v(5, 0, 0) > v(4, 99, 99))
        #expect([v(4, 2, 1), v(3, 17, 0), v(4, 1, 1)].max() == v(4, 2, 1))
    }

    @Test func description() {
        #expect(v(4, 2, 0).description == "4.2")
        #expect(v(4, 1, 1).description == "4.1.1")
        #expect(CRIUVersion(major: 4, minor: 2, sublevel: 0, gitID: "v4.2-12-gabc").description == "4.2 (v4.2-12-gabc)")
    }

    @Test func tooOldIsRejectedWithAnExplanation() {
        for old in [v(4, 1, 1), v(4, 1, 0), v(4, 0, 0), v(3, 17, 1)] {
            let e = #expect(throws: CryoFailure.self) { try old.checkSupported() }
            #expect(e?.message.contains("CRIU \(old.description) is too old") == true, "\(old)")
            #expect(e?.message.contains("4.2") == true)
        }
    }

    @Test func supportedVersionsAreAccepted() throws {
        try v(4, 2, 0).checkSupported()
        try v(4, 2, 1).checkSupported()
        try v(4, 3, 0).checkSupported()
        try v(5, 0, 0).checkSupported()
        try CRIUVersion(major: 4, minor: 2, sublevel: 0, gitID: "abc").checkSupported()
        #expect(CRIUVersion.minimum == v(4, 2, 0))
    }

    @Test func fromRPC() {
        var rpc = criu_version()
        rpc.majorNumber = 4
        rpc.minorNumber = 2
        rpc.sublevel = 1
        let a = CRIUVersion(rpc)
        #expect(a.number == 40201)
        #expect(a.gitID == nil)
        rpc.gitid = "deadbeef"
        #expect(CRIUVersion(rpc).gitID == "deadbeef")
    }
}
