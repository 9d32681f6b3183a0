import Glibc
import Testing
@testable import CryoCRIU
@testable import CryoLinux

@Suite struct FaultPointTests {
    @Test func parsesPointsAndActions() {
        let plan = FaultPoint.parse("checkpoint-frozen:kill, restore-notify-setup-namespaces:kill-criu,bad,x:explode")
        #expect(plan == ["checkpoint-frozen": .kill, "restore-notify-setup-namespaces": .killCRIU])
        #expect(FaultPoint.parse("").isEmpty)
        #expect(FaultPoint.parse("checkpoint-started:hold") == ["checkpoint-started": .hold])
    }
}

/// A CRIU worker that dies while a child of its own still holds the RPC socket (a restore's
/// forked tasks do) gives no EOF: its exit must be noticed, or the caller waits forever.
@Suite struct CRIUWorkerDeathTests {
    @Test func workerExitWithSocketHeldByItsChildIsReported() throws {
        let dir = "/tmp/cryo-fake-criu-\(getpid())"
        try FS.mkdirAll(dir)
        defer { try? FS.removeAll(dir) }
        let fake = dir + "/criu"
        let script = """
            #!/bin/sh
            [ "$1" = swrk ] || exit 0
            sleep 60 &
            echo $! > \(dir)/child
            exit 0

            """
        try FS.atomicWrite(fake, Array(script.utf8), mode: 0o755, durable: false)
        let worker = try CRIUWorker(criuPath: fake)
        defer {
            if let text = try? FS.readString(dir + "/child"), let pid = pid_t(text.trimmed) { kill(pid, SIGKILL) }
        }
        var message = ""
        do { _ = try worker.receive() } catch { message = "\(error)" }
        #expect(message.contains("exited with status 0 without answering"), "\(message)")
    }
}
