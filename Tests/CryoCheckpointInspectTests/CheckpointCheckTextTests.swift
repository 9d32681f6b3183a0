import Testing

@testable import CryoCheckpointInspect

@Suite struct CheckpointCheckTextTests {
    @Test func everyCannotNamesProcessAndResource() {
        let c = CheckpointCheck(container: "web", criuVersion: "4.2.1", pids: [10, 11], problems: [
            CheckpointProblem(pid: 11, comm: "app", fd: 7, kind: "io_uring", resource: "anon_inode:[io_uring]",
                              reason: "CRIU cannot checkpoint io_uring instances"),
            CheckpointProblem(pid: nil, comm: nil, kind: "criu", resource: "CRIU 4.1.1", reason: "too old"),
        ], notes: [CheckpointProblem(pid: 10, comm: "sh", fd: 0, kind: "terminal", resource: "/dev/pts/0", reason: "a terminal")])
        #expect(!c.checkpointable)
        let text = CheckpointCheckText.render(c)
        #expect(text.contains("container web: cannot be checkpointed"))
        #expect(text.contains("cannot: process 11 (app) fd 7 holds anon_inode:[io_uring]: CRIU cannot checkpoint io_uring instances"))
        #expect(text.contains("cannot: CRIU 4.1.1: too old"))
        #expect(text.contains("note: process 10 (sh) fd 0 holds /dev/pts/0"))
        #expect(CheckpointCheck(container: "x", criuVersion: "4.2.1", pids: [1], problems: []).checkpointable)
    }
}
