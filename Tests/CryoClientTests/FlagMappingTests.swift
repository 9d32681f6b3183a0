@testable import CryoClient
@testable import cryo
import Foundation
import XCTest

/// Flags as typed on the command line → the JSON cryod receives.
final class FlagMappingTests: XCTestCase {
    func body(_ argv: [String], env: [String: String] = [:]) throws -> [String: Any] {
        let run = try Run.parse(argv)
        var o = run.flags.options(image: run.image, command: run.command, detach: run.detach, isRun: true)
        o.consoleSize = nil
        let data = try CreateBody.build(o, environment: env).encoded()
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(data)) as? [String: Any])
    }

    func testRunFlagsToCreateBody() throws {
        let b = try body(["--rm", "-e", "A=1", "-e", "HOME_DIR", "--env=B=2", "-w", "/tmp", "--entrypoint", "/bin/sh",
                          "-v", "/host:/data:ro", "--memory", "64m", "--cpus", "1.5", "--pids-limit", "50",
                          "--hostname", "box", "--network", "none", "--name", "c1",
                          "busybox", "-c", "echo hi"], env: ["HOME_DIR": "/root"])
        XCTAssertEqual(b["Image"] as? String, "busybox")
        XCTAssertEqual(b["Cmd"] as? [String], ["-c", "echo hi"])
        XCTAssertEqual(b["Entrypoint"] as? [String], ["/bin/sh"])
        XCTAssertEqual(b["Env"] as? [String], ["A=1", "HOME_DIR=/root", "B=2"])
        XCTAssertEqual(b["WorkingDir"] as? String, "/tmp")
        XCTAssertEqual(b["Hostname"] as? String, "box")
        XCTAssertEqual(b["AttachStdout"] as? Bool, true)
        XCTAssertEqual(b["AttachStderr"] as? Bool, true)
        XCTAssertEqual(b["AttachStdin"] as? Bool, false)
        XCTAssertEqual(b["Tty"] as? Bool, false)
        let h = try XCTUnwrap(b["HostConfig"] as? [String: Any])
        XCTAssertEqual(h["AutoRemove"] as? Bool, true)
        XCTAssertEqual(h["Binds"] as? [String], ["/host:/data:ro"])
        XCTAssertEqual(h["Memory"] as? Int, 64 * 1024 * 1024)
        XCTAssertEqual(h["NanoCpus"] as? Int, 1_500_000_000)
        XCTAssertEqual(h["PidsLimit"] as? Int, 50)
        XCTAssertEqual(h["NetworkMode"] as? String, "none")
        XCTAssertEqual((h["LogConfig"] as? [String: Any])?["Type"] as? String, "")
    }

    func testConfinementFlagsToCreateBody() throws {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("cryo-flag-test-\(getpid()).json").path
        try Data("  {\"defaultAction\": \"SCMP_ACT_ALLOW\"}\n".utf8).write(to: URL(fileURLWithPath: profile))
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let b = try body(["--cap-add", "sys_admin", "--cap-add", "CAP_NET_ADMIN", "--cap-drop", "chown", "--cap-drop", "SYS_ADMIN",
                          "--security-opt", "no-new-privileges", "--security-opt", "seccomp=" + profile,
                          "--security-opt", "systempaths=unconfined", "--device", "/dev/fuse", "--device", "/dev/null:/dev/n2:r",
                          "--device", "/dev/zero:rw", "--privileged", "--pid", "host", "--ipc", "host", "--uts", "host",
                          "--cgroupns", "host", "--userns", "host", "busybox"])
        let h = try XCTUnwrap(b["HostConfig"] as? [String: Any])
        XCTAssertEqual(h["CapAdd"] as? [String], ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"])
        XCTAssertEqual(h["CapDrop"] as? [String], ["CAP_CHOWN"])
        XCTAssertEqual(h["SecurityOpt"] as? [String], ["no-new-privileges", "seccomp={\"defaultAction\": \"SCMP_ACT_ALLOW\"}"])
        XCTAssertEqual(h["MaskedPaths"] as? [String], [])
        XCTAssertEqual(h["ReadonlyPaths"] as? [String], [])
        let devices = try XCTUnwrap(h["Devices"] as? [[String: String]])
        XCTAssertEqual(devices, [
            ["PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"],
            ["PathOnHost": "/dev/null", "PathInContainer": "/dev/n2", "CgroupPermissions": "r"],
            ["PathOnHost": "/dev/zero", "PathInContainer": "/dev/zero", "CgroupPermissions": "rw"],
        ])
        XCTAssertEqual(h["Privileged"] as? Bool, true)
        XCTAssertEqual(h["PidMode"] as? String, "host")
        XCTAssertEqual(h["IpcMode"] as? String, "host")
        XCTAssertEqual(h["UTSMode"] as? String, "host")
        XCTAssertEqual(h["CgroupnsMode"] as? String, "host")
        XCTAssertEqual(h["UsernsMode"] as? String, "host")
        let plain = try XCTUnwrap(try body(["busybox"])["HostConfig"] as? [String: Any])
        XCTAssertNil(plain["CapAdd"])
        XCTAssertNil(plain["SecurityOpt"])
        XCTAssertEqual(plain["Privileged"] as? Bool, false)
        XCTAssertThrowsError(try body(["--security-opt", "seccomp=/nonexistent/profile.json", "busybox"]))
        XCTAssertThrowsError(try body(["--device", "/dev/null:/x:rwz", "busybox"]))
    }

    func testInteractiveTtyAndDetach() throws {
        let it = try body(["-i", "-t", "busybox", "sh"])
        XCTAssertEqual(it["Tty"] as? Bool, true)
        XCTAssertEqual(it["OpenStdin"] as? Bool, true)
        XCTAssertEqual(it["StdinOnce"] as? Bool, true)
        XCTAssertEqual(it["AttachStdin"] as? Bool, true)
        let grouped = try body(["-dit", "busybox", "sh"])
        XCTAssertEqual(grouped["Tty"] as? Bool, true)
        XCTAssertEqual(grouped["OpenStdin"] as? Bool, true)
        XCTAssertEqual(grouped["StdinOnce"] as? Bool, false)
        XCTAssertEqual(grouped["AttachStdin"] as? Bool, false)
        XCTAssertEqual(grouped["AttachStdout"] as? Bool, false)
        let plain = try body(["busybox"])
        XCTAssertNil(plain["Cmd"])
        XCTAssertNil(plain["Entrypoint"])
        XCTAssertEqual((plain["HostConfig"] as? [String: Any])?["NetworkMode"] as? String, "default")
        XCTAssertEqual((plain["HostConfig"] as? [String: Any])?["AutoRemove"] as? Bool, false)
    }

    func testOptionsAfterTheImageBelongToTheCommand() throws {
        let r = try Run.parse(["-d", "busybox", "sh", "-c", "sleep 1", "--rm", "-t"])
        XCTAssertTrue(r.detach)
        XCTAssertFalse(r.flags.autoRemove)
        XCTAssertEqual(r.command, ["sh", "-c", "sleep 1", "--rm", "-t"])
        let e = try Exec.parse(["-i", "c1", "ls", "-l"])
        XCTAssertEqual(e.command, ["ls", "-l"])
        XCTAssertTrue(e.interactive)
    }

    func testEmptyEntrypointResets() throws {
        XCTAssertEqual(try body(["--entrypoint", "", "busybox"])["Entrypoint"] as? [String], [""])
    }

    func testSizesAndCPUs() throws {
        XCTAssertEqual(try parseBytes("64m"), 67_108_864)
        XCTAssertEqual(try parseBytes("64MB"), 67_108_864)
        XCTAssertEqual(try parseBytes("1.5g"), 1_610_612_736)
        XCTAssertEqual(try parseBytes("512k"), 524_288)
        XCTAssertEqual(try parseBytes("1000"), 1000)
        XCTAssertEqual(try parseBytes("10b"), 10)
        XCTAssertThrowsError(try parseBytes("lots"))
        XCTAssertThrowsError(try parseBytes("-5m"))
        XCTAssertEqual(try parseCPUs("1.5"), 1_500_000_000)
        XCTAssertEqual(try parseCPUs("2"), 2_000_000_000)
        XCTAssertEqual(try parseCPUs(".25"), 250_000_000)
        XCTAssertThrowsError(try parseCPUs("1.5x"))
        XCTAssertThrowsError(try parseCPUs("."))
    }

    func testBadVolumeIsRefused() throws {
        XCTAssertThrowsError(try body(["-v", "/only-one-part", "busybox"]))
        XCTAssertThrowsError(try body(["-v", "/a:relative", "busybox"]))
    }

    func testExecBody() throws {
        let d = ExecCreateBody.build(cmd: ["ls"], interactive: true, tty: false, detach: true, env: ["A=1"], workdir: "/", user: "1000", consoleSize: [40, 100])
        XCTAssertEqual(d.AttachStdin, false)
        XCTAssertEqual(d.AttachStdout, false)
        XCTAssertEqual(d.Detach, true)
        XCTAssertNil(d.ConsoleSize)
        let a = ExecCreateBody.build(cmd: ["sh"], interactive: true, tty: true, detach: false, env: [], workdir: nil, user: nil, consoleSize: [40, 100])
        XCTAssertEqual(a.AttachStdin, true)
        XCTAssertEqual(a.AttachStderr, true)
        XCTAssertEqual(a.ConsoleSize, [40, 100])
        XCTAssertNil(a.Env)
    }

    func testCheckpointFlags() throws {
        let c = try CheckpointCreate.parse(["--leave-running", "--tcp-established", "--checkpoint-dir", "/x", "c1", "cp1"])
        XCTAssertTrue(c.leaveRunning)
        XCTAssertTrue(c.tcpEstablished)
        XCTAssertEqual(c.checkpointDir, "/x")
        let s = try Start.parse(["--checkpoint", "cp1", "--checkpoint-dir", "/x", "c1"])
        XCTAssertEqual(s.startQuery.map { "\($0.0)=\($0.1)" }, ["checkpoint=cp1", "checkpoint-dir=/x"])
        let stop = try Stop.parse(["-t", "3", "c1", "c2"])
        XCTAssertEqual(stop.timeout, 3)
        XCTAssertEqual(stop.containers, ["c1", "c2"])
    }
}
