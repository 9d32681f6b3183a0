import Dispatch
import Glibc
import Synchronization
import CryoTestSupport
import Testing
@testable import CryoLinux

@Suite struct PathTests {
    @Test(arguments: [
        ("/a/./b/../c//d/", "/a/c/d"),
        ("/", "/"),
        ("//", "/"),
        ("/..", "/"),
        ("/../../etc/passwd", "/etc/passwd"),
        ("/a/b/../../..", "/"),
        ("a/b/..", "a"),
        ("a/..", "."),
        ("", "."),
        (".", "."),
        ("./a/./b/", "a/b"),
        ("//a///b", "/a/b"),
        ("/a/b/c", "/a/b/c"),
        ("/a/...", "/a/..."),      // "..." is a name, not a parent reference
    ])
    func clean(_ input: String, _ expected: String) {
        #expect(FS.clean(input) == expected)
    }

    @Test func join() {
        #expect(FS.join("/a", "b") == "/a/b")
        #expect(FS.join("/a/", "b") == "/a/b")
        #expect(FS.join("/a", "/b") == "/a/b")
        #expect(FS.join("/a/", "/b") == "/a/b")
        #expect(FS.join("/rootfs", "/etc/hosts") == "/rootfs/etc/hosts")
        #expect(FS.join("/", "etc") == "/etc")
        #expect(FS.join("/", "/etc") == "/etc")
    }

    @Test func parent() {
        #expect(FS.parent("/a/b") == "/a")
        #expect(FS.parent("/a/b/c.json") == "/a/b")
        #expect(FS.parent("/a") == "/")
        #expect(FS.parent("/") == "/")
        #expect(FS.parent("a") == ".")
        #expect(FS.parent("a/b") == "a")
    }

    @Test func absolute() {
        var buf = [CChar](repeating: 0, count: 4096)
        let cwd = String(cString: getcwd(&buf, buf.count)!)
        #expect(FS.absolute("/x/../y/./z") == "/y/z")
        #expect(FS.absolute("/") == "/")
        #expect(FS.absolute("bundle") == FS.clean(cwd + "/bundle"))
        #expect(FS.absolute("./a/../b") == FS.clean(cwd + "/b"))
        #expect(FS.absolute(".") == FS.clean(cwd))
        #expect(FS.absolute("bundle").hasPrefix("/"))
    }
}

@Suite struct SecureJoinTests {
    /// root/
    ///   etc/passwd, etc/hosts
    ///   a/b/ (dirs)
    ///   abs -> /etc                   absolute: must mean root/etc
    ///   hostroot -> /
    ///   up -> ../../../../..          climbs past the root
    ///   a/b/rel -> ../../etc          relative, stays inside
    ///   a/b/escape -> ../../../../../../tmp
    ///   var/run -> /run               the usual distro link
    ///   chain -> /abs/../up/../etc    links through links with ".." in between
    ///   dotdotabs -> /../../../etc/hosts
    ///   loop1 -> loop2, loop2 -> loop1, self -> self, deep/x -> ../deep/x
    private func makeTree() throws -> TempDir {
        let t = try TempDir("cryo-securejoin")
        try t.file("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
        try t.file("etc/hosts", "127.0.0.1 localhost\n")
        try t.mkdir("a/b")
        try t.mkdir("run")
        try t.symlink("abs", to: "/etc")
        try t.symlink("hostroot", to: "/")
        try t.symlink("up", to: "../../../../..")
        try t.symlink("a/b/rel", to: "../../etc")
        try t.symlink("a/b/escape", to: "../../../../../../tmp")
        try t.symlink("var/run", to: "/run")
        try t.symlink("chain", to: "/abs/../up/../etc")
        try t.symlink("dotdotabs", to: "/../../../etc/hosts")
        try t.symlink("loop1", to: "loop2")
        try t.symlink("loop2", to: "loop1")
        try t.symlink("self", to: "self")
        try t.symlink("deep/x", to: "../deep/x")
        return t
    }

    private func assertInside(_ result: String, _ root: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result == root || result.hasPrefix(root + "/"), "\(result) escapes \(root)", sourceLocation: sourceLocation)
        let inner = result.dropFirst(root.count)
        #expect(!inner.split(separator: "/").contains(".."), "\(result) keeps a '..'", sourceLocation: sourceLocation)
        #expect(!inner.split(separator: "/").contains("."), "\(result) keeps a '.'", sourceLocation: sourceLocation)
    }

    @Test func resolvesInsideTheRoot() throws {
        let t = try makeTree()
        defer { t.remove() }
        let r = t.path
        let cases: [(String, String)] = [
            ("/etc/passwd", r + "/etc/passwd"),
            ("etc/passwd", r + "/etc/passwd"),
            ("/abs/passwd", r + "/etc/passwd"),           // not the host's /etc/passwd
            ("/abs", r + "/etc"),
            ("/hostroot/etc/hosts", r + "/etc/hosts"),
            ("/hostroot", r),
            ("/up/etc/passwd", r + "/etc/passwd"),
            ("/up", r),
            ("/a/b/rel/hosts", r + "/etc/hosts"),
            ("/a/b/escape/x", r + "/tmp/x"),
            ("/var/run/app.sock", r + "/run/app.sock"),
            ("/chain/passwd", r + "/etc/passwd"),
            ("/dotdotabs", r + "/etc/hosts"),
            ("../../../../etc/shadow", r + "/etc/shadow"),
            ("/a/../../../etc", r + "/etc"),
            ("/a/./b/../b//", r + "/a/b"),
            ("/missing/../x/y", r + "/x/y"),              // non-existent parts are kept lexically
            ("/missing/dir/file", r + "/missing/dir/file"),
            ("", r),
            ("/", r),
            ("/..", r),
        ]
        for (input, expected) in cases {
            let got = try FS.secureJoin(root: r, input)
            #expect(got == expected, "secureJoin(\(input))")
            assertInside(got, r)
        }
    }

    @Test func neverEscapesForManyCombinations() throws {
        let t = try makeTree()
        defer { t.remove() }
        let parts = ["..", "abs", "up", "hostroot", "a", "b", "rel", "escape", "etc", "chain", "var", "run", "x", "."]
        // Every two- and three-component path built from the tricky names.
        for p in parts {
            for q in parts {
                for s in ["", "..", "passwd", "up"] {
                    let input = "/" + [p, q, s].filter { !$0.isEmpty }.joined(separator: "/")
                    let got = try FS.secureJoin(root: t.path, input)
                    assertInside(got, t.path)
                }
            }
        }
    }

    @Test func symlinkLoopsFailWithELOOP() throws {
        let t = try makeTree()
        defer { t.remove() }
        for input in ["/loop1", "/loop2/x", "/self", "/a/../self/etc", "/deep/x"] {
            let e = #expect(throws: SyscallError.self, "\(input)") { try FS.secureJoin(root: t.path, input) }
            #expect(e?.errno == ELOOP, "\(input)")
        }
    }

    @Test func longButFiniteChainsResolve() throws {
        let t = try TempDir("cryo-securejoin-chain")
        defer { t.remove() }
        // l0 -> l1 -> ... -> l39 -> /target: 40 links, well under any loop limit.
        try t.mkdir("target")
        for i in 0..<40 { try t.symlink("l\(i)", to: i == 39 ? "/target" : "l\(i + 1)") }
        #expect(try FS.secureJoin(root: t.path, "/l0/file") == t.path + "/target/file")
    }
}

@Suite struct FileIOTests {
    @Test func atomicWriteAndReadBytesRoundTrip() throws {
        let t = try TempDir("cryo-fs")
        defer { t.remove() }
        let path = t.at("state.json")
        // Larger than the 64 KiB read buffer, with every byte value.
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        try FS.atomicWrite(path, bytes)
        #expect(try FS.readBytes(path) == bytes)

        var st = stat()
        #expect(stat(path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)

        // Replacing with shorter content leaves nothing of the old file.
        try FS.atomicWrite(path, Array("{\"id\":\"x\"}".utf8), mode: 0o644)
        #expect(try FS.readString(path) == "{\"id\":\"x\"}")
        // No temporary file is left behind.
        #expect(try FS.listDirectory(t.path) == ["state.json"])

        try FS.atomicWrite(path, [])
        #expect(try FS.readBytes(path) == [])
    }

    @Test func atomicWriteIntoAMissingDirectoryFails() throws {
        let t = try TempDir("cryo-fs")
        defer { t.remove() }
        let e = #expect(throws: SyscallError.self) { try FS.atomicWrite(t.at("nope/state.json"), [1, 2, 3]) }
        #expect(e?.errno == ENOENT)
        #expect(!FS.exists(t.at("nope")))
    }

    @Test func readBytesOfAMissingFileThrowsENOENT() {
        let e = #expect(throws: SyscallError.self) { try FS.readBytes("/nonexistent-cryo-unit/file") }
        #expect(e?.errno == ENOENT)
        #expect(e?.description.contains("/nonexistent-cryo-unit/file") == true)
    }

    @Test func removeAllRemovesTreesButDoesNotFollowSymlinks() throws {
        let t = try TempDir("cryo-fs")
        defer { t.remove() }
        let outside = try t.file("outside/keep.txt", "keep")
        try t.file("outside/dir/also.txt", "also")
        try t.file("tree/a/b/c.txt", "c")
        try t.file("tree/a/d.txt", "d")
        try t.mkdir("tree/empty/nested")
        try t.symlink("tree/a/link-to-file", to: outside)
        try t.symlink("tree/a/link-to-dir", to: t.at("outside/dir"))
        try t.symlink("tree/dangling", to: t.at("does-not-exist"))
        try sys(mkfifo(t.at("tree/fifo"), 0o600), "mkfifo")

        try FS.removeAll(t.at("tree"))
        #expect(FS.lstatMode(t.at("tree")) == nil)
        #expect(try FS.readString(outside) == "keep")
        #expect(try FS.readString(t.at("outside/dir/also.txt")) == "also")

        // A missing path is not an error; a single file or symlink is removed.
        try FS.removeAll(t.at("tree"))
        try FS.removeAll(t.at("outside/keep.txt"))
        #expect(!FS.exists(t.at("outside/keep.txt")))
        try t.symlink("lnk", to: t.at("outside"))
        try FS.removeAll(t.at("lnk"))
        #expect(FS.lstatMode(t.at("lnk")) == nil)
        #expect(FS.isDirectory(t.at("outside/dir")))
    }

    /// A checkpoint's cleanup and the container's monitor remove the same runtime state at
    /// the same time: a directory that vanishes between lstat and opendir is gone, as wanted,
    /// not an error (it failed a whole checkpoint once).
    @Test func removeAllToleratesAConcurrentRemoval() throws {
        let t = try TempDir("cryo-fs-race")
        defer { t.remove() }
        let failures = Mutex<[String]>([])
        for round in 0..<40 {
            let root = t.at("tree\(round)")
            for d in 0..<40 {
                for f in 0..<8 { try FS.touch(root + "/d\(d)/e/f\(f)") }
            }
            DispatchQueue.concurrentPerform(iterations: 2) { _ in
                do { try FS.removeAll(root) } catch { failures.withLock { $0.append("\(error)") } }
            }
            #expect(FS.lstatMode(root) == nil)
        }
        #expect(failures.withLock { $0 } == [])
    }

    @Test func mkdirAllAndTouch() throws {
        let t = try TempDir("cryo-fs")
        defer { t.remove() }
        try FS.mkdirAll(t.at("x/y/z"))
        #expect(FS.isDirectory(t.at("x/y/z")))
        try FS.mkdirAll(t.at("x/y/z"))           // idempotent
        try FS.touch(t.at("p/q/file"))
        #expect(FS.lstatMode(t.at("p/q/file")) == S_IFREG)
        try FS.write(t.at("p/q/file"), "data")
        try FS.touch(t.at("p/q/file"))           // keeps existing content
        #expect(try FS.readString(t.at("p/q/file")) == "data")
    }
}
