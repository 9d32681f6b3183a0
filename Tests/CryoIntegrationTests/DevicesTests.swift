// linux.resources.devices (cgroup v1 devices controller): the default spec denies every
// device, and the runtime then allows the basics (null, zero, tty, pts, …) as runc does.

import Foundation
import CryoTestSupport
import Testing

extension CryoIntegration {
    @Suite("Device access")
    struct Devices {
        @Test("a device node the spec does not allow cannot be opened; /dev/null still works")
        func deniedDevice() throws {
            try requireRuntime()
            try withEnv { env in
                let bundle = try env.makeBundle(args: ["sleep", "1000"])
                let c = try env.startContainer(bundle, id: env.newID("dev"))
                let list = try String(contentsOfFile: "/sys/fs/cgroup/devices/cryo/\(c.id)/devices.list", encoding: .utf8)
                #expect(!list.contains("a *:* rwm"), "devices cgroup still allows everything: \(list)")
                #expect(list.contains("c 1:3 rwm"), "/dev/null is not allowed: \(list)")
                let ok = try env.exec(c.id, ["sh", "-c", "echo x > /dev/null && echo null-ok"])
                #expect(ok.status == 0 && ok.stdout.contains("null-ok"), "\(ok)")
                // A block device node made inside the container (major 7: loop) must be refused.
                let r = try env.cryo(["exec", "--cap", "CAP_MKNOD", c.id, "sh", "-c", "mknod /dev/blk b 7 0 && head -c 1 /dev/blk"])
                #expect(r.status != 0 && r.stderr.contains("Operation not permitted"), "\(r)")
            }
        }
    }
}
