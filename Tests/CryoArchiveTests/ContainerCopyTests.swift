import CArchive
import CryoArchive
import CryoLinux
import FoundationEssentials
import Glibc
import Testing

/// `docker cp`'s pieces below the engine: the stat header, the path rules, resolution inside
/// a root, the tar written from a tree and the extraction of a client's (hostile) tar.
@Suite struct ContainerCopyTests {
    typealias Kind = CheckpointArchiveReaderTests.Kind
    enum TK { case file, directory, symlink, hardlink, other }

    static func scratch() -> String { CheckpointArchiveReaderTests.scratch() }
    static func cleanup(_ d: String) { CheckpointArchiveReaderTests.cleanup(d) }

    // MARK: stat header

    @Test func goFileModeBits() {
        #expect(ContainerPathStat.goFileMode(S_IFREG | 0o644) == 0o644)
        #expect(ContainerPathStat.goFileMode(S_IFDIR | 0o755) == (1 << 31) | 0o755)
        #expect(ContainerPathStat.goFileMode(S_IFLNK | 0o777) == (1 << 27) | 0o777)
        #expect(ContainerPathStat.goFileMode(S_IFREG | S_ISUID | 0o755) == (1 << 23) | 0o755)
        #expect(ContainerPathStat.goFileMode(S_IFDIR | S_ISVTX | 0o777) == (1 << 31) | (1 << 20) | 0o777)
        #expect(ContainerPathStat.goFileMode(S_IFCHR | 0o666) == (1 << 26) | (1 << 21) | 0o666)
        #expect(ContainerPathStat.goFileMode(S_IFIFO | 0o600) == (1 << 25) | 0o600)
    }

    @Test func headerIsBase64OfDockersJSON() throws {
        let st = ContainerPathStat(name: "hostname", size: 13, mode: 0o644,
                                   mtime: ContainerPathStat.rfc3339(seconds: 1_700_000_000, nanoseconds: 120_000_000), linkTarget: "")
        let json = String(decoding: Data(base64Encoded: try st.headerValue())!, as: UTF8.self)
        #expect(json == #"{"name":"hostname","size":13,"mode":420,"mtime":"2023-11-14T22:13:20.12Z","linkTarget":""}"#)
        #expect(try ContainerPathStat.decodeHeader(try st.headerValue()) == st)
        #expect(ContainerPathStat.rfc3339(seconds: 0, nanoseconds: 0) == "1970-01-01T00:00:00Z")
        #expect(ContainerPathStat.rfc3339(seconds: 1, nanoseconds: 5) == "1970-01-01T00:00:01.000000005Z")
    }

    // MARK: path rules (dockerd's ResolvePath / SplitPathDirEntry)

    @Test func pathSplitting() throws {
        let f = try ContainerCopyPath("etc/hostname")
        #expect(f.absolute == "/etc/hostname" && f.directory == "/etc/" && f.base == "hostname" && f.name == "hostname")
        let slash = try ContainerCopyPath("/etc/")
        #expect(slash.absolute == "/etc/" && slash.directory == "/etc/" && slash.base == "" && slash.name == "etc")
        let dot = try ContainerCopyPath("/etc/.")
        #expect(dot.absolute == "/etc/." && dot.base == "." && dot.name == "." && dot.contentsOnly)
        let dotSlash = try ContainerCopyPath("etc/./")
        #expect(dotSlash.absolute == "/etc/./" && dotSlash.name == ".")
        let root = try ContainerCopyPath("/")
        #expect(root.absolute == "/" && root.base == "" && root.name == "/")
        #expect(try ContainerCopyPath("a/../../b").absolute == "/b")
        #expect(try ContainerCopyPath("//x//y").absolute == "/x/y")
        #expect(throws: ArchiveError.self) { try ContainerCopyPath("") }
        #expect(ContainerCopyPath.isAtOrBelow("/data/x", "/data"))
        #expect(ContainerCopyPath.isAtOrBelow("/data", "/data/"))
        #expect(!ContainerCopyPath.isAtOrBelow("/database", "/data"))
    }

    // MARK: resolution inside a root

    /// A fake container root: /etc/hostname, /escape → /, /up → ../../.., /abs → /etc,
    /// /loop → /loop, /dangling → /nowhere/x, /magic → /proc/self/root/etc.
    static func fakeRoot() -> String {
        let d = scratch()
        mkdir(d + "/root", 0o755)
        let r = d + "/root"
        mkdir(r + "/etc", 0o755)
        FileManagerless.write(r + "/etc/hostname", "container\n")
        symlink("/", r + "/escape")
        symlink("../../..", r + "/up")
        symlink("/etc", r + "/abs")
        symlink("/loop", r + "/loop")
        symlink("/nowhere/x", r + "/dangling")
        symlink("/proc/self/root/etc", r + "/magic")
        return d
    }

    @Test func resolutionStaysInsideTheRoot() throws {
        let d = Self.fakeRoot()
        defer { Self.cleanup(d) }
        let rootFD = open(d + "/root", FS.openPathOnly | O_DIRECTORY)
        defer { close(rootFD) }
        for (path, expected) in [("/escape/etc/hostname", "/etc/hostname"), ("/up/etc/hostname", "/etc/hostname"),
                                 ("/abs/hostname", "/etc/hostname"), ("../../../etc/hostname", "/etc/hostname"),
                                 ("/escape/escape/up/abs", "/etc"), ("/", "/")] {
            let r = try FS.resolveInRoot(rootFD, path)
            defer { close(r.fd) }
            #expect(r.path == expected, "\(path)")
            var st = stat(), host = stat()
            fstat(r.fd, &st)
            stat(d + "/root" + expected, &host)
            #expect(st.st_ino == host.st_ino, "\(path) must be the root's own file")
        }
        // A final link not followed.
        let link = try FS.resolveInRoot(rootFD, "/escape", followFinal: false)
        #expect(link.path == "/escape")
        close(link.fd)
        // The magic link's text is resolved inside the root, where there is no /proc.
        #expect(throws: SyscallError.self) { try FS.resolveInRoot(rootFD, "/magic/hostname") }
        do {
            _ = try FS.resolveInRoot(rootFD, "/loop/x")
            Issue.record("a link loop resolved")
        } catch let e as SyscallError { #expect(e.errno == ELOOP) }
        do {
            _ = try FS.resolveInRoot(rootFD, "/etc/hostname/x")
            Issue.record("a file resolved as a directory")
        } catch let e as SyscallError { #expect(e.errno == ENOTDIR) }
        let dangling = try FS.resolveInRoot(rootFD, "/dangling", allowMissing: true)
        #expect(dangling.path == "/nowhere/x")
        close(dangling.fd)
    }

    // MARK: the tar of a tree

    static func tarEntries(_ bytes: [UInt8]) -> [(String, TK, String?)] {
        let a = archive_read_new()!
        defer { archive_read_free(a) }
        archive_read_support_format_tar(a)
        _ = bytes.withUnsafeBytes { archive_read_open_memory(a, $0.baseAddress, $0.count) }
        var out: [(String, TK, String?)] = []
        var e: OpaquePointer?
        while archive_read_next_header(a, &e) == ARCHIVE_OK, let e {
            let name = String(cString: archive_entry_pathname(e))
            if let hl = archive_entry_hardlink(e) {
                out.append((name, .hardlink, String(cString: hl)))
                continue
            }
            switch archive_entry_filetype(e) {
            case S_IFDIR: out.append((name, .directory, nil))
            case S_IFLNK: out.append((name, .symlink, String(cString: archive_entry_symlink(e))))
            case S_IFREG:
                var data = [UInt8](repeating: 0, count: Int(archive_entry_size(e)))
                _ = data.withUnsafeMutableBytes { archive_read_data(a, $0.baseAddress, $0.count) }
                out.append((name, .file, String(decoding: data, as: UTF8.self)))
            default: out.append((name, .other, nil))
            }
        }
        return out
    }

    static func tar(_ source: ContainerTreeTar.Source, top: String, path: String = "/", skip: Set<String> = []) throws -> [UInt8] {
        var bytes: [UInt8] = []
        try ContainerTreeTar.write(source, topName: top, containerPath: path, skip: skip) { bytes.append(contentsOf: $0); return true }
        return bytes
    }

    @Test func treeTarNamesAsDockerd() throws {
        let d = Self.scratch()
        defer { Self.cleanup(d) }
        mkdir(d + "/dir", 0o755)
        FileManagerless.write(d + "/dir/f", "hello")
        link(d + "/dir/f", d + "/dir/g")
        symlink("/etc/shadow", d + "/dir/l")
        mkfifo(d + "/dir/p", 0o600)
        mkdir(d + "/dir/mnt", 0o755)
        FileManagerless.write(d + "/dir/mnt/hidden", "x")
        let fd = open(d, FS.openPathOnly | O_DIRECTORY)
        defer { close(fd) }

        let named = Self.tarEntries(try Self.tar(.entry(parentFD: fd, name: "dir"), top: "dir", path: "/dir", skip: ["/dir/mnt"]))
        #expect(named.map(\.0) == ["dir/", "dir/f", "dir/g", "dir/l", "dir/p"])
        #expect(named[1].2 == "hello")
        #expect(named[2].1 == .hardlink && named[2].2 == "dir/f")
        #expect(named[3].1 == .symlink && named[3].2 == "/etc/shadow")

        let dirFD = open(d + "/dir", FS.openPathOnly | O_DIRECTORY)
        defer { close(dirFD) }
        let contents = Self.tarEntries(try Self.tar(.directory(fd: dirFD), top: ".", path: "/dir"))
        #expect(contents.map(\.0) == ["./", "./f", "./g", "./l", "./mnt/", "./mnt/hidden", "./p"])
        let root = Self.tarEntries(try Self.tar(.directory(fd: dirFD), top: "/", path: "/"))
        #expect(root.first?.0 == "/" && root.contains { $0.0 == "/mnt/hidden" })

        // A symlink asked for by name is archived as the link, never followed.
        let link = Self.tarEntries(try Self.tar(.entry(parentFD: dirFD, name: "l"), top: "l"))
        #expect(link.count == 1 && link[0].1 == .symlink)
    }

    @Test func treeTarStopsWhenTheSinkDoes() {
        let d = Self.scratch()
        defer { Self.cleanup(d) }
        FileManagerless.write(d + "/big", String(repeating: "x", count: 1 << 20))
        let fd = open(d, FS.openPathOnly | O_DIRECTORY)
        defer { close(fd) }
        #expect(throws: ArchiveError.self) {
            try ContainerTreeTar.write(.entry(parentFD: fd, name: "big"), topName: "big") { _ in false }
        }
    }

    // MARK: extraction of a client's tar

    static let roomy = ContainerTarExtractor.Limits(maxBytes: 1 << 30, source: "test")

    /// Extracts `members` into a fresh `dest` under `d`; the refusal text, nil if accepted.
    static func extract(_ members: [(String, Kind)], in d: String, options: ContainerTarExtractor.Options? = nil) -> String? {
        let tarPath = d + "/in.tar"
        unlink(tarPath)
        CheckpointArchiveReaderTests.rawTar(tarPath, members)
        let fd = open(d + "/dest", O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        do {
            try ContainerTarExtractor.extract(tarPath, into: fd, display: "/dest", options: options ?? .init(noOverwriteDirNonDir: true, limits: roomy))
            return nil
        } catch {
            return "\(error)"
        }
    }

    static func destination() -> String {
        let d = scratch()
        mkdir(d + "/dest", 0o755)
        return d
    }

    @Test func ordinaryTreeIsExtracted() throws {
        let d = Self.destination()
        defer { Self.cleanup(d) }
        #expect(Self.extract([("./", .dir), ("a", .dir), ("a/f", .file("data")), ("a/l", .symlink("/etc/passwd")),
                              ("a/h", .hardlink("a/f")), ("a/p", .fifo), ("new/deep/x", .file("y"))], in: d) == nil)
        #expect(try FS.readString(d + "/dest/a/f") == "data")
        #expect(FS.readlink(d + "/dest/a/l") == "/etc/passwd")
        #expect(try FS.statInode(d + "/dest/a/h") == FS.statInode(d + "/dest/a/f"))
        #expect(FS.lstatMode(d + "/dest/a/p") == S_IFIFO)
        #expect(try FS.readString(d + "/dest/new/deep/x") == "y")
        var st = stat()
        stat(d + "/dest/a/f", &st)
        #expect(st.st_mode & 0o7777 == 0o600)
    }

    @Test func hostileNamesAreRefusedBeforeAnythingIsWritten() {
        let d = Self.destination()
        defer { Self.cleanup(d) }
        for bad in ["../escaped", "a/../../escaped", "/abs-escaped"] {
            let r = Self.extract([("first", .file("1")), (bad, .file("x"))], in: d)
            #expect(r != nil, "\(bad) accepted")
            #expect(!FS.exists(d + "/dest/first"), "something was written before \(bad) was refused")
            #expect(!FS.exists(d + "/escaped") && !FS.exists("/abs-escaped"))
        }
        let hl = Self.extract([("h", .hardlink("../outside"))], in: d)
        #expect(hl?.contains("..") == true)
    }

    @Test func deviceNodesAreRefused() {
        let d = Self.destination()
        defer { Self.cleanup(d) }
        let tarPath = d + "/in.tar"
        let a = archive_write_new()!
        archive_write_set_format_pax_restricted(a)
        archive_write_open_filename(a, tarPath)
        let e = archive_entry_new()!
        archive_entry_copy_pathname(e, "null")
        archive_entry_set_filetype(e, UInt32(Glibc.S_IFCHR))
        archive_entry_set_rdevmajor(e, 1)
        archive_entry_set_rdevminor(e, 3)
        archive_write_header(a, e)
        archive_entry_free(e)
        archive_write_close(a)
        archive_write_free(a)
        let fd = open(d + "/dest", O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        #expect(throws: ArchiveError.self) {
            try ContainerTarExtractor.extract(tarPath, into: fd, display: "/dest", options: .init(noOverwriteDirNonDir: true, limits: Self.roomy))
        }
        #expect(!FS.exists(d + "/dest/null"))
    }

    /// The archive's own symlink, then a write through it: refused, nothing outside.
    @Test func noWriteThroughAnArchiveSymlink() {
        let d = Self.destination()
        defer { Self.cleanup(d) }
        mkdir(d + "/outside", 0o755)
        let r = Self.extract([("l", .symlink(d + "/outside")), ("l/pwned", .file("x"))], in: d)
        #expect(r?.contains("symbolic link") == true, "\(r ?? "accepted")")
        #expect(!FS.exists(d + "/outside/pwned"))
        let abs = Self.extract([("root", .symlink("/")), ("root/tmp/cryo-cp-pwned", .file("x"))], in: d)
        #expect(abs != nil)
        #expect(!FS.exists("/tmp/cryo-cp-pwned"))
    }

    /// A symlink the container has in the destination: never written through; an entry of
    /// the same name replaces the link itself.
    @Test func containersSymlinkIsReplacedNotFollowed() throws {
        let d = Self.destination()
        defer { Self.cleanup(d) }
        FileManagerless.write(d + "/host-file", "host")
        symlink(d + "/host-file", d + "/dest/link")
        #expect(Self.extract([("link", .file("container"))], in: d) == nil)
        #expect(try FS.readString(d + "/host-file") == "host")
        #expect(FS.lstatMode(d + "/dest/link") == S_IFREG)
        mkdir(d + "/hostdir", 0o755)
        symlink(d + "/hostdir", d + "/dest/dirlink")
        #expect(Self.extract([("dirlink/x", .file("x"))], in: d) != nil)
        #expect(!FS.exists(d + "/hostdir/x"))
    }

    @Test func noOverwriteDirNonDir() {
        let d = Self.destination()
        defer { Self.cleanup(d) }
        mkdir(d + "/dest/dir", 0o755)
        FileManagerless.write(d + "/dest/file", "f")
        let r1 = Self.extract([("dir", .file("x"))], in: d)
        #expect(r1?.contains("cannot overwrite directory") == true)
        let r2 = Self.extract([("file", .dir)], in: d)
        #expect(r2?.contains("cannot overwrite non-directory") == true)
        // Without the flag the existing one is replaced, as docker does.
        #expect(Self.extract([("dir", .file("x"))], in: d, options: .init(noOverwriteDirNonDir: false, limits: Self.roomy)) == nil)
        #expect(FS.lstatMode(d + "/dest/dir") == S_IFREG)
    }

    @Test func limitsAreCheckedFirst() {
        let d = Self.destination()
        defer { Self.cleanup(d) }
        let few = ContainerTarExtractor.Limits(maxBytes: 1 << 30, maxEntries: 2, source: "test")
        let r = Self.extract([("a", .file("1")), ("b", .file("2")), ("c", .file("3"))], in: d, options: .init(noOverwriteDirNonDir: true, limits: few))
        #expect(r?.contains("more than 2 entries") == true)
        #expect(!FS.exists(d + "/dest/a"))
        let small = ContainerTarExtractor.Limits(maxBytes: 2000, source: "test")
        let big = String(repeating: "z", count: 4000)
        let r2 = Self.extract([("a", .file("1")), ("big", .file(big))], in: d, options: .init(noOverwriteDirNonDir: true, limits: small))
        #expect(r2?.contains("more than 2000 bytes") == true)
        #expect(!FS.exists(d + "/dest/a"))
    }

    @Test func ownerOverride() {
        guard getuid() == 0 else { return }
        let d = Self.destination()
        defer { Self.cleanup(d) }
        #expect(Self.extract([("o", .file("x")), ("od", .dir), ("ol", .symlink("o"))], in: d,
                             options: .init(noOverwriteDirNonDir: true, owner: (1234, 5678), limits: Self.roomy)) == nil)
        for p in ["o", "od", "ol"] {
            var st = stat()
            lstat(d + "/dest/" + p, &st)
            #expect(st.st_uid == 1234 && st.st_gid == 5678, "\(p)")
        }
    }
}

/// Small file writes for the tests (no Foundation FileManager).
enum FileManagerless {
    static func write(_ path: String, _ s: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = s.utf8CString.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count - 1) }
        close(fd)
    }
}
