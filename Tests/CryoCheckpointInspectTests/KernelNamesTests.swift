import Testing

@testable import CryoCheckpointInspect

@Suite struct KernelNamesTests {
    @Test func addressesAsCRIUStoresThem() {
        // 127.0.0.1 in network order, read as a little-endian word.
        #expect(KernelNames.ipAddress([0x0100_007f]) == "127.0.0.1")
        #expect(KernelNames.ipAddress([0, 0, 0, 0x0100_0000]) == "::1")
        #expect(KernelNames.ipAddress([0, 0, 0xffff_0000, 0x0201_a8c0]) == "::ffff:192.168.1.2")
        #expect(KernelNames.ipAddress([0xb80d_0120, 0, 0, 0x0100_0000]) == "2001:db8::1")
    }

    @Test func unixNames() {
        #expect(OpenFiles.unixName(Array("/run/x.sock".utf8)) == "/run/x.sock")
        #expect(OpenFiles.unixName([0] + Array("abstract".utf8)) == "@abstract")
        #expect(OpenFiles.unixName([]) == "")
    }

    @Test func mappings() {
        #expect(KernelNames.protection(prot: 5, flags: 2) == "r-xp")
        #expect(KernelNames.protection(prot: 3, flags: 1) == "rw-s")
        #expect(KernelNames.mappingKind(status: 1 | 1 << 6) == "file")
        #expect(KernelNames.mappingKind(status: 1 | 1 << 1 | 1 << 9) == "stack")
        #expect(KernelNames.mappingKind(status: 1 | 1 << 9) == "anon")
        // CRIU 4.2 leaves the stack bit clear for the main stack: the mapping holding start_stack is it.
        #expect(KernelNames.mappingKind(status: 1 | 1 << 9, holdsStackStart: true) == "stack")
        #expect(KernelNames.mappingKind(status: 1 | 1 << 6, holdsStackStart: true) == "file")
    }
}
