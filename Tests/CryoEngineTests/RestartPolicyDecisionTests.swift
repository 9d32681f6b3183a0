@testable import CryoEngine
import CryoLinux
import Testing

/// Restart policies as dockerd applies them: the request's checks, which exits restart, what
/// a starting cryod brings back, the back-off.
@Suite struct RestartPolicyDecisionTests {
    typealias D = RestartPolicyDecision

    static func p(_ name: String?, _ count: Int? = nil) -> RestartPolicy {
        var r = RestartPolicy(name: name ?? "")
        r.Name = name
        r.MaximumRetryCount = count
        return r
    }

    @Test func namesParseAsDockerSpellsThem() throws {
        #expect(try D.policy(nil) == .no)
        #expect(try D.policy(Self.p("")) == .no)
        #expect(try D.policy(Self.p("no")) == .no)
        #expect(try D.policy(Self.p("always")) == .always)
        #expect(try D.policy(Self.p("unless-stopped")) == .unlessStopped)
        #expect(try D.policy(Self.p("on-failure")) == .onFailure(maxRetries: 0))
        #expect(try D.policy(Self.p("on-failure", 3)) == .onFailure(maxRetries: 3))
    }

    @Test func invalidPoliciesAreRefusedWithDockerdsWording() {
        func message(_ r: RestartPolicy) -> String? {
            do { _ = try D.policy(r); return nil } catch {
                #expect(CryoFailure.Code.of(error) == .invalidArgument)
                return "\(error)"
            }
        }
        #expect(message(Self.p("sometimes"))?.contains("invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'") == true)
        #expect(message(Self.p("on-failure", -1))?.contains("invalid restart policy: maximum retry count cannot be negative") == true)
        #expect(message(Self.p("always", 2))?.contains("maximum retry count can only be used with 'on-failure'") == true)
        #expect(message(Self.p("always", -2))?.contains("can only be used with 'on-failure' and cannot be negative") == true)
        #expect(message(Self.p("no", 1)) != nil)
    }

    @Test func exitsThatRestart() {
        #expect(!D.restartsAfterExit(.no, exitCode: 1, restarts: 0, stoppedOnPurpose: false))
        #expect(D.restartsAfterExit(.always, exitCode: 0, restarts: 99, stoppedOnPurpose: false))
        #expect(D.restartsAfterExit(.unlessStopped, exitCode: 0, restarts: 0, stoppedOnPurpose: false))
        // A stop, kill or removal is never followed by a restart, whatever the policy.
        #expect(!D.restartsAfterExit(.always, exitCode: 137, restarts: 0, stoppedOnPurpose: true))
        #expect(!D.restartsAfterExit(.unlessStopped, exitCode: 143, restarts: 0, stoppedOnPurpose: true))
        #expect(!D.restartsAfterExit(.onFailure(maxRetries: 0), exitCode: 137, restarts: 0, stoppedOnPurpose: true))
    }

    @Test func onFailureCountsOnlyFailuresAndStopsAtItsLimit() {
        let twice = D.Policy.onFailure(maxRetries: 2)
        #expect(!D.restartsAfterExit(twice, exitCode: 0, restarts: 0, stoppedOnPurpose: false))
        #expect(D.restartsAfterExit(twice, exitCode: 1, restarts: 0, stoppedOnPurpose: false))
        #expect(D.restartsAfterExit(twice, exitCode: 1, restarts: 1, stoppedOnPurpose: false))
        #expect(!D.restartsAfterExit(twice, exitCode: 1, restarts: 2, stoppedOnPurpose: false))
        // No limit.
        #expect(D.restartsAfterExit(.onFailure(maxRetries: 0), exitCode: 3, restarts: 1000, stoppedOnPurpose: false))
    }

    @Test func whatAStartingDaemonBringsBack() {
        // always: even after a manual stop.
        #expect(D.startsWithDaemon(.always, exitCode: 137, restarts: 0, stop: .api, everStarted: true))
        #expect(D.startsWithDaemon(.always, exitCode: 255, restarts: 0, stop: nil, everStarted: true))
        // unless-stopped: only when it was not stopped on purpose.
        #expect(!D.startsWithDaemon(.unlessStopped, exitCode: 143, restarts: 0, stop: .api, everStarted: true))
        #expect(D.startsWithDaemon(.unlessStopped, exitCode: 255, restarts: 0, stop: nil, everStarted: true))
        // on-failure: a failure (the reboot's 255) within the limit, not after a manual stop.
        #expect(D.startsWithDaemon(.onFailure(maxRetries: 0), exitCode: 255, restarts: 0, stop: nil, everStarted: true))
        #expect(!D.startsWithDaemon(.onFailure(maxRetries: 0), exitCode: 137, restarts: 0, stop: .api, everStarted: true))
        #expect(!D.startsWithDaemon(.onFailure(maxRetries: 2), exitCode: 1, restarts: 2, stop: nil, everStarted: true))
        // Stopped by a checkpoint: its restore brings it back; never started: left alone.
        #expect(!D.startsWithDaemon(.always, exitCode: 0, restarts: 0, stop: .checkpoint, everStarted: true))
        #expect(!D.startsWithDaemon(.always, exitCode: 0, restarts: 0, stop: nil, everStarted: false))
        #expect(!D.startsWithDaemon(.no, exitCode: 255, restarts: 0, stop: nil, everStarted: true))
    }

    @Test func backoffDoublesFromAHundredMillisecondsToAMinuteAndResetsAfterTenSeconds() {
        var b = D.Backoff()
        #expect(b.next(ranSeconds: 0.01) == 100)
        #expect(b.next(ranSeconds: 0.01) == 200)
        #expect(b.next(ranSeconds: 9.9) == 400)
        var delays: [Int64] = []
        for _ in 0..<12 { delays.append(b.next(ranSeconds: 0)) }
        #expect(delays.prefix(5) == [800, 1600, 3200, 6400, 12_800])
        #expect(delays.last == 60_000)
        #expect(delays.allSatisfy { $0 <= 60_000 })
        // A run of 10 s or more: back to the first delay.
        #expect(b.next(ranSeconds: 10) == 100)
        #expect(b.next(ranSeconds: 0) == 200)
    }
}
