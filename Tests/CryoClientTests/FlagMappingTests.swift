@testable import CryoClient
@testable import cryo
import Foundation
import Testing

/// Flags as typed on the command line → the JSON cryod receives.
@Suite struct FlagMappingTests {
    func body(_ argv: [String], env: [String: String] = [:]) throws -> [String: Any] {
        let run = try Run.parse(argv)
        var o = run.flags.options(image: run.image, command: run.command, detach: run.detach, isRun: true)
        o.consoleSize = nil
        let data = try CreateBody.build(o, environment: env).encoded()
        return try #require(JSONSerialization.jsonObject(with: Data(data)) as? [String: Any])
    }

    /// `--init` → HostConfig.Init true; without it the key is absent, as the docker CLI sends it.
    @Test func initFlag() throws {
        let with = try body(["--init", "busybox", "sleep", "1"])
        #expect(((with["HostConfig"] as? [String: Any])?["Init"] as? Bool) == true)
        let without = try body(["busybox", "sleep", "1"])
        #expect((without["HostConfig"] as? [String: Any])?["Init"] == nil)
    }

    @Test func runFlagsToCreateBody() throws {
        let b = try body(["--rm", "-e", "A=1", "-e", "HOME_DIR", "--env=B=2", "-w", "/tmp", "--entrypoint", "/bin/sh",
                          "-v", "/host:/data:ro", "--memory", "64m", "--cpus", "1.5", "--pids-limit", "50",
                          "--hostname", "box", "--network", "none", "--name", "c1",
                          "busybox", "-c", "echo hi"], env: ["HOME_DIR": "/root"])
        #expect((b["Image"] as? String) == "busybox")
        #expect((b["Cmd"] as? [String]) == ["-c", "echo hi"])
        #expect((b["Entrypoint"] as? [String]) == ["/bin/sh"])
        #expect((b["Env"] as? [String]) == ["A=1", "HOME_DIR=/root", "B=2"])
        #expect((b["WorkingDir"] as? String) == "/tmp")
        #expect((b["Hostname"] as? String) == "box")
        #expect((b["AttachStdout"] as? Bool) == true)
        #expect((b["AttachStderr"] as? Bool) == true)
        #expect((b["AttachStdin"] as? Bool) == false)
        #expect((b["Tty"] as? Bool) == false)
        let h = try #require(b["HostConfig"] as? [String: Any])
        #expect((h["AutoRemove"] as? Bool) == true)
        #expect((h["Binds"] as? [String]) == ["/host:/data:ro"])
        #expect((h["Memory"] as? Int) == (64 * 1024 * 1024))
        #expect((h["NanoCpus"] as? Int) == 1_500_000_000)
        #expect((h["PidsLimit"] as? Int) == 50)
        #expect((h["NetworkMode"] as? String) == "none")
        #expect(((h["LogConfig"] as? [String: Any])?["Type"] as? String) == "")
    }

    @Test func confinementFlagsToCreateBody() throws {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("cryo-flag-test-\(getpid()).json").path
        try Data("  {\"defaultAction\": \"SCMP_ACT_ALLOW\"}\n".utf8).write(to: URL(fileURLWithPath: profile))
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let b = try body(["--cap-add", "sys_admin", "--cap-add", "CAP_NET_ADMIN", "--cap-drop", "chown", "--cap-drop", "SYS_ADMIN",
                          "--security-opt", "no-new-privileges", "--security-opt", "seccomp=" + profile,
                          "--security-opt", "systempaths=unconfined", "--device", "/dev/fuse", "--device", "/dev/null:/dev/n2:r",
                          "--device", "/dev/zero:rw", "--privileged", "--pid", "host", "--ipc", "host", "--uts", "host",
                          "--cgroupns", "host", "--userns", "host", "busybox"])
        let h = try #require(b["HostConfig"] as? [String: Any])
        #expect((h["CapAdd"] as? [String]) == ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"])
        #expect((h["CapDrop"] as? [String]) == ["CAP_CHOWN"])
        #expect((h["SecurityOpt"] as? [String]) == ["no-new-privileges", "seccomp={\"defaultAction\": \"SCMP_ACT_ALLOW\"}"])
        #expect((h["MaskedPaths"] as? [String]) == [])
        #expect((h["ReadonlyPaths"] as? [String]) == [])
        let devices = try #require(h["Devices"] as? [[String: String]])
        #expect(devices == [
            ["PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"],
            ["PathOnHost": "/dev/null", "PathInContainer": "/dev/n2", "CgroupPermissions": "r"],
            ["PathOnHost": "/dev/zero", "PathInContainer": "/dev/zero", "CgroupPermissions": "rw"],
        ])
        #expect((h["Privileged"] as? Bool) == true)
        #expect((h["PidMode"] as? String) == "host")
        #expect((h["IpcMode"] as? String) == "host")
        #expect((h["UTSMode"] as? String) == "host")
        #expect((h["CgroupnsMode"] as? String) == "host")
        #expect((h["UsernsMode"] as? String) == "host")
        let plain = try #require(try body(["busybox"])["HostConfig"] as? [String: Any])
        #expect(plain["CapAdd"] == nil)
        #expect(plain["SecurityOpt"] == nil)
        #expect((plain["Privileged"] as? Bool) == false)
        #expect(throws: (any Error).self) { try body(["--security-opt", "seccomp=/nonexistent/profile.json", "busybox"]) }
        #expect(throws: (any Error).self) { try body(["--device", "/dev/null:/x:rwz", "busybox"]) }
    }

    @Test func interactiveTtyAndDetach() throws {
        let it = try body(["-i", "-t", "busybox", "sh"])
        #expect((it["Tty"] as? Bool) == true)
        #expect((it["OpenStdin"] as? Bool) == true)
        #expect((it["StdinOnce"] as? Bool) == true)
        #expect((it["AttachStdin"] as? Bool) == true)
        let grouped = try body(["-dit", "busybox", "sh"])
        #expect((grouped["Tty"] as? Bool) == true)
        #expect((grouped["OpenStdin"] as? Bool) == true)
        #expect((grouped["StdinOnce"] as? Bool) == false)
        #expect((grouped["AttachStdin"] as? Bool) == false)
        #expect((grouped["AttachStdout"] as? Bool) == false)
        let plain = try body(["busybox"])
        #expect(plain["Cmd"] == nil)
        #expect(plain["Entrypoint"] == nil)
        #expect(((plain["HostConfig"] as? [String: Any])?["NetworkMode"] as? String) == "default")
        #expect(((plain["HostConfig"] as? [String: Any])?["AutoRemove"] as? Bool) == false)
    }

    @Test func optionsAfterTheImageBelongToTheCommand() throws {
        let r = try Run.parse(["-d", "busybox", "sh", "-c", "sleep 1", "--rm", "-t"])
        #expect(r.detach)
        #expect(!r.flags.autoRemove)
        #expect(r.command == ["sh", "-c", "sleep 1", "--rm", "-t"])
        let e = try Exec.parse(["-i", "c1", "ls", "-l"])
        #expect(e.command == ["ls", "-l"])
        #expect(e.interactive)
    }

    @Test func emptyEntrypointResets() throws {
        #expect(try (body(["--entrypoint", "", "busybox"])["Entrypoint"] as? [String]) == [""])
    }

    @Test func sizesAndCPUs() throws {
        #expect(try parseBytes("64m") == 67_108_864)
        #expect(try parseBytes("64MB") == 67_108_864)
        #expect(try parseBytes("1.5g") == 1_610_612_736)
        #expect(try parseBytes("512k") == 524_288)
        #expect(try parseBytes("1000") == 1000)
        #expect(try parseBytes("10b") == 10)
        #expect(throws: (any Error).self) { try parseBytes("lots") }
        #expect(throws: (any Error).self) { try parseBytes("-5m") }
        #expect(try parseCPUs("1.5") == 1_500_000_000)
        #expect(try parseCPUs("2") == 2_000_000_000)
        #expect(try parseCPUs(".25") == 250_000_000)
        #expect(throws: (any Error).self) { try parseCPUs("1.5x") }
        #expect(throws: (any Error).self) { try parseCPUs(".") }
    }

    @Test func badVolumeIsRefused() throws {
        // `-v /only-one-part` is an anonymous volume now (MountFlagTests); a relative one is not.
        #expect(throws: (any Error).self) { try body(["-v", "only-one-part", "busybox"]) }
        #expect(throws: (any Error).self) { try body(["-v", "/a:relative", "busybox"]) }
    }

    @Test func execBody() throws {
        let d = ExecCreateBody.build(cmd: ["ls"], interactive: true, tty: false, detach: true, env: ["A=1"], workdir: "/", user: "1000", consoleSize: [40, 100])
        #expect(d.AttachStdin == false)
        #expect(d.AttachStdout == false)
        #expect(d.Detach == true)
        #expect(d.ConsoleSize == nil)
        let a = ExecCreateBody.build(cmd: ["sh"], interactive: true, tty: true, detach: false, env: [], workdir: nil, user: nil, consoleSize: [40, 100])
        #expect(a.AttachStdin == true)
        #expect(a.AttachStderr == true)
        #expect(a.ConsoleSize == [40, 100])
        #expect(a.Env == nil)
    }

    @Test func checkpointFlags() throws {
        let c = try CheckpointCreate.parse(["--leave-running", "--tcp-established", "--checkpoint-dir", "/x", "c1", "cp1"])
        #expect(c.leaveRunning)
        #expect(c.tcpEstablished)
        #expect(c.checkpointDir == "/x")
        let s = try Start.parse(["--checkpoint", "cp1", "--checkpoint-dir", "/x", "c1"])
        #expect((s.startQuery.map { "\($0.0)=\($0.1)" }) == ["checkpoint=cp1", "checkpoint-dir=/x"])
        let stop = try Stop.parse(["-t", "3", "c1", "c2"])
        #expect(stop.timeout == 3)
        #expect(stop.containers == ["c1", "c2"])
    }
}

/// `--health-*` and `--no-healthcheck` → Config.Healthcheck, as the docker CLI sends it.
@Suite struct HealthFlagTests {
    func body(_ argv: [String]) throws -> [String: Any] {
        let run = try Run.parse(argv)
        var o = run.flags.options(image: run.image, command: run.command, detach: run.detach, isRun: true)
        o.consoleSize = nil
        let data = try CreateBody.build(o).encoded()
        return try #require(JSONSerialization.jsonObject(with: Data(data)) as? [String: Any])
    }

    @Test func healthFlags() throws {
        let b = try body(["--health-cmd", "curl -f x || exit 1", "--health-interval", "1m30s", "--health-timeout", "500ms",
                          "--health-retries", "4", "--health-start-period", "1.5s", "--health-start-interval", "2s", "busybox"])
        let h = try #require(b["Healthcheck"] as? [String: Any])
        #expect((h["Test"] as? [String]) == ["CMD-SHELL", "curl -f x || exit 1"])
        #expect((h["Interval"] as? Int64) == 90_000_000_000)
        #expect((h["Timeout"] as? Int64) == 500_000_000)
        #expect((h["Retries"] as? Int) == 4)
        #expect((h["StartPeriod"] as? Int64) == 1_500_000_000)
        #expect((h["StartInterval"] as? Int64) == 2_000_000_000)
    }

    @Test func onlyAnIntervalKeepsTheImagesTest() throws {
        let h = try #require(try body(["--health-interval", "5s", "busybox"])["Healthcheck"] as? [String: Any])
        #expect(h["Test"] == nil)
        #expect((h["Interval"] as? Int64) == 5_000_000_000 && (h["Timeout"] as? Int64) == 0 && (h["Retries"] as? Int) == 0)
        #expect(try body(["busybox"])["Healthcheck"] == nil)
    }

    @Test func noHealthcheck() throws {
        let h = try #require(try body(["--no-healthcheck", "busybox"])["Healthcheck"] as? [String: Any])
        #expect((h["Test"] as? [String]) == ["NONE"])
        #expect(throws: ClientError.self) { try body(["--no-healthcheck", "--health-cmd", "true", "busybox"]) }
        #expect(throws: ClientError.self) { try body(["--health-interval=-1s", "busybox"]) }
        #expect(throws: ClientError.self) { try body(["--health-retries=-1", "busybox"]) }
        #expect(throws: ClientError.self) { try body(["--health-timeout", "10", "busybox"]) }
    }

    @Test func goDurations() throws {
        #expect(try parseGoDuration("0", flag: "x") == 0)
        #expect(try parseGoDuration("1h2m3s", flag: "x") == 3_723_000_000_000)
        #expect(try parseGoDuration("250us", flag: "x") == 250_000)
        #expect(try parseGoDuration("-2s", flag: "x") == -2_000_000_000)
        for bad in ["", "s", "1", "1x", "1.s.", "--1s"] {
            #expect(throws: ClientError.self) { try parseGoDuration(bad, flag: "x") }
        }
    }
}
