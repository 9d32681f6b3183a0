@testable import CryoEngine
import Testing

/// Which open devices `checkpoint check` lets pass: those CRIU's dump handles (by number, as
/// CRIU decides, not by path).
struct CheckpointabilityScanTests {
    @Test(arguments: [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (1, 11), (10, 200), (10, 235)])
    func devicesCRIUDumps(_ major: Int, _ minor: Int) {
        #expect(CheckpointabilityScan.criuDumps(major: UInt32(major), minor: UInt32(minor), character: true))
    }

    @Test(arguments: [(10, 229), (10, 232), (226, 0), (4, 64), (189, 0)])   // fuse, kvm, dri, ttyS0, usb
    func devicesCRIURefuses(_ major: Int, _ minor: Int) {
        #expect(!CheckpointabilityScan.criuDumps(major: UInt32(major), minor: UInt32(minor), character: true))
    }

    @Test func blockDevicesAreNotCountedOn() {
        #expect(!CheckpointabilityScan.criuDumps(major: 1, minor: 3, character: false))
        #expect(!CheckpointabilityScan.criuDumps(major: 8, minor: 0, character: false))
    }
}
