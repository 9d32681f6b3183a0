import CArchive
import CryoLinux
import Glibc
import CryoTestSupport
import Testing
@testable import CryoImages

@Suite struct WhiteoutTests {
    @Test(arguments: [
        ("etc/passwd", WhiteoutAction.extract),
        ("etc/.wh.passwd", .whiteout("etc/passwd")),
        (".wh.tmp", .whiteout("tmp")),
        ("a/b/.wh..wh..opq", .opaque("a/b")),
        (".wh..wh..opq", .opaque("")),
        ("a/.wh.", .extract),
        ("a/x.wh.y", .extract),
        ("a/.wh.dir/inner", .extract),
    ])
    func pathToAction(path: String, action: WhiteoutAction) {
        #expect(WhiteoutAction.of(path: path) == action)
    }

    /// Needs root (mknod of a char device, trusted.* xattr): fails, never skips, without it.
    @Test func layerUnpacksToOverlayForm() throws {
        #expect(getuid() == 0, "whiteout devices and trusted.overlay xattrs need root")
        let s = try TempDir()
        defer { s.remove() }
        try Tar.write(s.at("layer.tar.gz"), [
            .dir("etc"), .file("etc/keep", "k"), .file("etc/.wh.passwd", ""),
            .dir("var"), .dir("var/cache"), .file("var/cache/.wh..wh..opq", ""), .file("var/cache/new", "n"),
            .file("opaque-only/.wh..wh..opq", ""),
        ], compression: .gzip)
        let root = s.at("root")
        try FS.mkdirAll(root)
        try ArchiveReader.extract(s.at("layer.tar.gz"), into: root, options: [.overlayWhiteouts, .owners])

        var st = stat()
        #expect(lstat(root + "/etc/passwd", &st) == 0)
        #expect(st.st_mode & S_IFMT == S_IFCHR)
        #expect(st.st_rdev == 0)
        #expect(!FS.exists(root + "/etc/.wh.passwd"))
        #expect(try FS.readString(root + "/etc/keep") == "k")
        for dir in ["var/cache", "opaque-only"] {
            var v = [CChar](repeating: 0, count: 8)
            let n = getxattr(root + "/" + dir, "trusted.overlay.opaque", &v, v.count)
            #expect(n == 1 && v[0] == CChar(UInt8(ascii: "y")), "\(dir) is not opaque")
            #expect(!FS.exists(root + "/" + dir + "/.wh..wh..opq"))
        }
        #expect(try FS.readString(root + "/var/cache/new") == "n")
    }

    /// ".wh.." names "." (it trapped the daemon on a force unwrap): refused like any bad entry.
    @Test(arguments: [".wh..", ".wh...", "a/.wh..", "a/.wh..."])
    func whiteoutOfDotIsRefused(entry: String) throws {
        let s = try TempDir()
        defer { s.remove() }
        try Tar.write(s.at("l.tar"), [.dir("a"), .file(entry, "")])
        try FS.mkdirAll(s.at("root"))
        #expect {
            try ArchiveReader.extract(s.at("l.tar"), into: s.at("root"), options: [.overlayWhiteouts])
        } throws: { "\($0)".contains("refused") }
    }

    @Test func whiteoutThroughSymlinkedParentIsRefused() throws {
        let s = try TempDir()
        defer { s.remove() }
        try Tar.write(s.at("l.tar"), [.symlink("etc", "/etc"), .file("etc/.wh.passwd", "")])
        try FS.mkdirAll(s.at("root"))
        #expect {
            try ArchiveReader.extract(s.at("l.tar"), into: s.at("root"), options: [.overlayWhiteouts])
        } throws: { "\($0)".contains("\"etc/.wh.passwd\"") && "\($0)".contains("symlink") }
        #expect(FS.exists("/etc/passwd") && FS.lstatMode("/etc/passwd") == S_IFREG)
    }
}
