import CryoLinux
import Glibc
import CryoTestSupport
import Testing
@testable import CryoImages

@Suite struct ArchiveReaderTests {
    static let tree: [Tar.Entry] = [
        .dir("bin"), .bytes("bin/tool", Array("#!/bin/sh\necho hi\n".utf8), mode: 0o755),
        .symlink("bin/sh", "tool"), .symlink("bin/abs", "/bin/tool"),
        .hardlink("bin/tool2", "bin/tool"), .file("./etc/motd", "hello", mode: 0o600),
    ]

    @Test(arguments: [Tar.Compression.none, .gzip, .zstd])
    func extractsAnyCompression(compression: Tar.Compression) throws {
        let s = try TempDir()
        defer { s.remove() }
        try Tar.write(s.at("a.tar"), Self.tree, compression: compression)
        let listed = try ArchiveReader.list(s.at("a.tar"))
        #expect(listed.map { $0.kind == .directory ? String($0.path.dropLast()) : $0.path } == Self.tree.map(\.path))
        #expect(listed.first { $0.path == "bin/sh" }?.kind == .symlink)
        #expect(listed.first { $0.path == "bin/tool2" }?.kind == .hardlink)

        let root = s.at("root")
        try FS.mkdirAll(root)
        try ArchiveReader.extract(s.at("a.tar"), into: root)
        #expect(try FS.readString(root + "/bin/tool") == "#!/bin/sh\necho hi\n")
        #expect(FS.readlink(root + "/bin/sh") == "tool")
        #expect(FS.readlink(root + "/bin/abs") == "/bin/tool")
        #expect(try FS.statInode(root + "/bin/tool2") == FS.statInode(root + "/bin/tool"))
        var st = stat()
        #expect(stat(root + "/etc/motd", &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        #expect(st.st_mtim.tv_sec == 1_700_000_000)
        #expect(stat(root + "/bin/tool", &st) == 0 && st.st_mode & 0o777 == 0o755)
    }

    @Test func uncompressedDigestIgnoresCompression() throws {
        let s = try TempDir()
        defer { s.remove() }
        try Tar.write(s.at("a.tar"), Self.tree)
        try Tar.write(s.at("a.tar.gz"), Self.tree, compression: .gzip)
        try Tar.write(s.at("a.tar.zst"), Self.tree, compression: .zstd)
        let plain = try Digest.of(file: s.at("a.tar"))
        #expect(try ArchiveReader.uncompressedDigest(s.at("a.tar")) == plain)
        #expect(try ArchiveReader.uncompressedDigest(s.at("a.tar.gz")) == plain)
        #expect(try ArchiveReader.uncompressedDigest(s.at("a.tar.zst")) == plain)
        #expect(try Digest.of(file: s.at("a.tar.gz")) != plain)
    }

    static let evil: [(String, [Tar.Entry], String)] = [
        ("../x", [.file("../x", "evil")], "contains a \"..\" component"),
        ("a/../../x", [.dir("a"), .file("a/../../x", "evil")], "contains a \"..\" component"),
        ("/etc/x", [.file("/etc/x", "evil")], "is absolute"),
        ("escape/x", [.symlink("escape", "/tmp"), .file("escape/x", "evil")], "\"escape\" is a symlink (to \"/tmp\")"),
        ("up/x", [.symlink("up", "../../.."), .file("up/x", "evil")], "\"up\" is a symlink"),
        ("h", [.hardlink("h", "/etc/passwd")], "hardlink target \"/etc/passwd\" is absolute"),
        ("h2", [.hardlink("h2", "../outside")], "hardlink target \"../outside\" contains"),
        ("h3", [.symlink("d", "/etc"), .hardlink("h3", "d/passwd")], "\"d\" is a symlink"),
    ]

    @Test(arguments: 0..<evil.count)
    func refusesEscapes(i: Int) throws {
        let (name, entries, reason) = Self.evil[i]
        let s = try TempDir()
        defer { s.remove() }
        try FS.mkdirAll(s.at("deep/a/b/root"))
        let root = s.at("deep/a/b/root")
        try Tar.write(s.at("evil.tar"), entries)
        #expect {
            try ArchiveReader.extract(s.at("evil.tar"), into: root)
        } throws: { error in
            "\(error)".contains("archive entry \"\(name)\": refused") && "\(error)".contains(reason)
        }
        #expect(!FS.exists(s.at("deep/a/b/x")) && !FS.exists(s.at("deep/x")) && !FS.exists(s.at("x")))
        #expect(!FS.exists("/tmp/x") || FS.lstatMode("/tmp/x") != S_IFREG || (try? FS.readString("/tmp/x")) != "evil")
    }

    /// A later entry at the path of an earlier symlink replaces the link; it never writes
    /// to where the link points.
    @Test func fileOverSymlinkReplacesTheLink() throws {
        let s = try TempDir()
        defer { s.remove() }
        try FS.atomicWrite(s.at("victim"), Array("safe".utf8), durable: false)
        try FS.mkdirAll(s.at("root"))
        try Tar.write(s.at("a.tar"), [.symlink("f", s.at("victim")), .file("f", "evil")])
        try ArchiveReader.extract(s.at("a.tar"), into: s.at("root"))
        #expect(try FS.readString(s.at("victim")) == "safe")
        #expect(FS.lstatMode(s.at("root/f")) == S_IFREG)
        #expect(try FS.readString(s.at("root/f")) == "evil")
    }

    @Test func refusesGarbage() throws {
        let s = try TempDir()
        defer { s.remove() }
        try FS.atomicWrite(s.at("junk"), Array(repeating: 0x41, count: 4096), durable: false)
        try FS.mkdirAll(s.at("root"))
        #expect(throws: (any Error).self) { try ArchiveReader.extract(s.at("junk"), into: s.at("root")) }
    }
}
