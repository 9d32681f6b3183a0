import CryoTestSupport
import Glibc
import Testing
@testable import CryoLinux

/// FS.directoryBeneath: a client-chosen directory is walked without following links.
@Suite struct PathBeneathTests {
    func scratch() throws -> String { try TempDir("cryo-beneath").path }

    @Test func createsMissingDirectoriesInside() throws {
        let root = try scratch()
        defer { try? FS.removeAll(root) }
        try FS.directoryBeneath(root: root, root + "/a/b/c", create: true)
        #expect(FS.lstatMode(root + "/a/b/c") == S_IFDIR)
    }

    @Test func refusesASymlinkAnywhereOnThePath() throws {
        let root = try scratch()
        let outside = try scratch()
        defer { try? FS.removeAll(root); try? FS.removeAll(outside) }
        try FS.mkdirAll(root + "/a")
        #expect(symlink(outside, root + "/a/link") == 0)
        for p in [root + "/a/link", root + "/a/link/x", root + "/a/link/x/y"] {
            #expect(throws: SyscallError.self) { try FS.directoryBeneath(root: root, p, create: true) }
        }
        #expect(try FS.listDirectory(outside).isEmpty)
        // a link to a directory inside the root is refused too: links are never followed
        try FS.mkdirAll(root + "/real")
        #expect(symlink(root + "/real", root + "/inner") == 0)
        #expect(throws: SyscallError.self) { try FS.directoryBeneath(root: root, root + "/inner/x", create: true) }
        #expect(!FS.exists(root + "/real/x"))
    }

    @Test func refusesPathsOutsideOrUncleaned() throws {
        let root = try scratch()
        defer { try? FS.removeAll(root) }
        for p in [root + "x/y", "/etc", root + "/../etc", "relative"] {
            #expect(throws: SyscallError.self) { try FS.directoryBeneath(root: root, p, create: false) }
        }
    }

    @Test func missingWithoutCreateIsENOENT() throws {
        let root = try scratch()
        defer { try? FS.removeAll(root) }
        do {
            try FS.directoryBeneath(root: root, root + "/nope/x", create: false)
            Issue.record("expected ENOENT")
        } catch let e as SyscallError {
            #expect(e.errno == ENOENT)
        }
    }

    @Test func aFileOnThePathIsRefused() throws {
        let root = try scratch()
        defer { try? FS.removeAll(root) }
        try FS.touch(root + "/f")
        #expect(throws: SyscallError.self) { try FS.directoryBeneath(root: root, root + "/f/x", create: true) }
    }
}
