import CArchive
import CryoArchive
import Glibc
import Testing

/// The reader's refusals, on archives made here (no root, no CRIU).
@Suite struct CheckpointArchiveReaderTests {
    enum Kind { case file(String), dir, symlink(String), hardlink(String), fifo }

    /// A scratch directory, removed by the caller.
    static func scratch() -> String {
        var t = Array("/tmp/cryo-archive-test.XXXXXX".utf8CString)
        let p = t.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }!
        return String(cString: p)
    }

    static func cleanup(_ d: String) { _ = system("rm -rf '\(d)'") }

    /// A tar written member by member, whatever the names and types (hostile ones too).
    static func rawTar(_ path: String, _ members: [(String, Kind)], filter: ArchiveCompression = .none) {
        let a = archive_write_new()!
        archive_write_set_format_pax_restricted(a)
        switch filter {
        case .zstd: archive_write_add_filter_zstd(a)
        case .gzip: archive_write_add_filter_gzip(a)
        case .none: archive_write_add_filter_none(a)
        }
        archive_write_open_filename(a, path)
        for (name, kind) in members {
            let e = archive_entry_new()!
            archive_entry_copy_pathname(e, name)
            archive_entry_set_perm(e, 0o600)
            var data: [UInt8] = []
            switch kind {
            case .file(let s): archive_entry_set_filetype(e, 0o100000); data = Array(s.utf8)
            case .dir: archive_entry_set_filetype(e, 0o040000)
            case .symlink(let t): archive_entry_set_filetype(e, 0o120000); archive_entry_copy_symlink(e, t)
            case .hardlink(let t): archive_entry_set_filetype(e, 0o100000); archive_entry_copy_hardlink(e, t)
            case .fifo: archive_entry_set_filetype(e, 0o010000)
            }
            archive_entry_set_size(e, Int64(data.count))
            archive_write_header(a, e)
            if !data.isEmpty { _ = data.withUnsafeBytes { archive_write_data(a, $0.baseAddress, $0.count) } }
            archive_entry_free(e)
        }
        archive_write_close(a)
        archive_write_free(a)
    }

    static let basics: [(String, Kind)] = [
        ("checkpoint", .dir), ("checkpoint/inventory.img", .file("inv")),
        ("config.dump", .file("{}")), ("spec.dump", .file("{}")),
    ]

    /// Extracts `archive` into a fresh staging dir; returns the refusal text, nil if accepted.
    static func refusal(_ archive: String, in dir: String, maxBytes: Int64 = 1 << 30) -> String? {
        let staging = dir + "/staging"
        mkdir(staging, 0o700)
        defer { cleanup(staging) }
        do {
            _ = try CheckpointArchiveReader.extract(archive, into: staging, limits: ArchiveLimits(maxBytes: maxBytes))
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// An archive made by the writer: a secret in a page image, config, spec, cryo's container file.
    static func writeGood(_ path: String, _ compression: ArchiveCompression) throws {
        let w = try CheckpointArchiveWriter(path: path, compression: compression)
        try w.addBytes("cryo-container.json", Array("{}".utf8))
        try w.addDirectory("checkpoint")
        try w.addBytes("checkpoint/inventory.img", Array("inventory".utf8))
        try w.addBytes("checkpoint/pages-1.img", Array("SECRET-AAAA".utf8))
        try w.addBytes("config.dump", Array("{}".utf8))
        try w.addBytes("spec.dump", Array("{}".utf8))
        try w.finish()
    }

    @Test(arguments: ArchiveCompression.allCases)
    func roundTripIsVerifiedAndPrivate(_ c: ArchiveCompression) throws {
        let d = Self.scratch()
        defer { Self.cleanup(d) }
        let archive = d + "/a.tar"
        try Self.writeGood(archive, c)
        var st = stat()
        #expect(stat(archive, &st) == 0 && st.st_mode & 0o777 == 0o600)
        mkdir(d + "/s", 0o700)
        let x = try CheckpointArchiveReader.extract(archive, into: d + "/s", limits: ArchiveLimits(maxBytes: 1 << 20))
        #expect(x.verified)
        #expect(x.has("checkpoint/pages-1.img") && x.has("config.dump") && !x.has("cryo-digests.json"))
        #expect(stat(d + "/s/checkpoint/pages-1.img", &st) == 0 && st.st_mode & 0o777 == 0o600)
    }

    @Test func aPodmanStyleArchiveWithoutDigestsIsAcceptedUnverified() throws {
        let d = Self.scratch()
        defer { Self.cleanup(d) }
        Self.rawTar(d + "/p.tar", Self.basics)
        mkdir(d + "/s", 0o700)
        let x = try CheckpointArchiveReader.extract(d + "/p.tar", into: d + "/s", limits: ArchiveLimits(maxBytes: 1 << 20))
        #expect(!x.verified)
    }

    @Test func pathEscapesAreRefused() {
        let d = Self.scratch()
        defer { Self.cleanup(d) }
        for bad in ["../evil", "checkpoint/../../evil", "/etc/evil"] {
            Self.rawTar(d + "/e.tar", Self.basics + [(bad, .file("x"))])
            let r = Self.refusal(d + "/e.tar", in: d)
            #expect(r?.contains("member \(bad)") == true, "\(bad): \(r ?? "accepted")")
            #expect(r?.contains("path escape") == true || r?.contains("absolute") == true)
            unlink(d + "/e.tar")
        }
        #expect(access(d + "/evil", F_OK) != 0)
    }

    @Test func symlinksHardlinksAndFifosAreRefused() {
        let d = Self.scratch()
        defer { Self.cleanup(d) }
        let cases: [(String, Kind, String)] = [
            ("checkpoint/link", .symlink("/etc"), "symbolic link"),
            ("checkpoint/hard", .hardlink("config.dump"), "hard link"),
            ("checkpoint/fifo", .fifo, "fifo"),
        ]
        for (name, kind, word) in cases {
            Self.rawTar(d + "/e.tar", Self.basics + [(name, kind)])
            let r = Self.refusal(d + "/e.tar", in: d)
            #expect(r?.contains(word) == true && r?.contains(name) == true, "\(name): \(r ?? "accepted")")
            unlink(d + "/e.tar")
        }
        // The classic trick: a symlink, then a file written "through" it.
        Self.rawTar(d + "/e.tar", Self.basics + [("checkpoint/x", .symlink(d)), ("checkpoint/x/owned", .file("x"))])
        #expect(Self.refusal(d + "/e.tar", in: d)?.contains("symbolic link") == true)
        #expect(access(d + "/owned", F_OK) != 0)
    }

    @Test func aDuplicateMemberIsRefused() {
        let d = Self.scratch()
        defer { Self.cleanup(d) }
        Self.rawTar(d + "/e.tar", Self.basics + [("config.dump", .file("{\"id\":\"other\"}"))])
        #expect(Self.refusal(d + "/e.tar", in: d)?.contains("appears twice") == true)
    }

    @Test func aTamperedMemberIsRefusedByItsDigest() throws {
        let d = Self.scratch()
        defer { Self.cleanup(d) }
        let archive = d + "/a.tar"
        try Self.writeGood(archive, .none)
        // Change the page data in place: tar's header checksums do not cover data.
        var bytes = try readFile(archive)
        let needle = Array("SECRET-AAAA".utf8)
        let at = (0...(bytes.count - needle.count)).first { Array(bytes[$0..<$0 + needle.count]) == needle }!
        bytes[at + 7] = UInt8(ascii: "B")
        try writeFile(archive, bytes)
        let r = Self.refusal(archive, in: d)
        #expect(r?.contains("checkpoint/pages-1.img has sha256") == true, "\(r ?? "accepted")")
    }

    @Test func anExtraOrMissingMemberIsRefused() throws {
        let d = Self.scratch()
        defer { Self.cleanup(d) }
        // Digest list without a member that it records.
        Self.rawTar(d + "/e.tar", Self.basics + [("cryo-digests.json", .file(#"{"version":1,"members":[{"path":"checkpoint/pages-1.img","size":1,"sha256":"00"}]}"#))])
        let r = Self.refusal(d + "/e.tar", in: d)
        #expect(r?.contains("missing from the archive") == true, "\(r ?? "accepted")")
    }

    @Test(arguments: [ArchiveCompression.none, .zstd, .gzip])
    func aTruncatedArchiveIsRefused(_ c: ArchiveCompression) throws {
        let d = Self.scratch()
        defer { Self.cleanup(d) }
        let archive = d + "/a.tar"
        try Self.writeGood(archive, c)
        let bytes = try readFile(archive)
        for cut in [bytes.count / 3, bytes.count / 2, bytes.count - 700] where cut > 0 {
            try writeFile(archive, Array(bytes[0..<cut]))
            let r = Self.refusal(archive, in: d)
            #expect(r != nil, "cut at \(cut) of \(bytes.count) was accepted")
            #expect(r?.contains("truncated") == true || r?.contains("damaged") == true || r?.contains("missing") == true, "\(r ?? "")")
        }
    }

    @Test func aDecompressionBombStopsAtTheLimit() throws {
        let d = Self.scratch()
        defer { Self.cleanup(d) }
        let zeros = String(repeating: "\0", count: 8 << 20)
        Self.rawTar(d + "/bomb.tar.zst", Self.basics + [("checkpoint/pages-1.img", .file(zeros))], filter: .zstd)
        var st = stat()
        stat(d + "/bomb.tar.zst", &st)
        #expect(st.st_size < 64 << 10)   // small on disk
        let r = Self.refusal(d + "/bomb.tar.zst", in: d, maxBytes: 1 << 20)
        #expect(r?.contains("decompression bomb") == true, "\(r ?? "accepted")")
        let many = (0..<300).map { ("checkpoint/f\($0)", Kind.file("")) }
        Self.rawTar(d + "/many.tar", Self.basics + many)
        let staging = d + "/s2"
        mkdir(staging, 0o700)
        #expect(throws: ArchiveError.self) {
            _ = try CheckpointArchiveReader.extract(d + "/many.tar", into: staging, limits: ArchiveLimits(maxBytes: 1 << 30, maxEntries: 100))
        }
    }

    @Test func memberNames() throws {
        #expect(try CheckpointArchiveReader.memberName("./checkpoint/") == "checkpoint")
        #expect(try CheckpointArchiveReader.memberName("checkpoint/./core-1.img") == "checkpoint/core-1.img")
        #expect(throws: ArchiveError.self) { try CheckpointArchiveReader.memberName("a/../../b") }
        #expect(throws: ArchiveError.self) { try CheckpointArchiveReader.memberName("/abs") }
    }
}

func readFile(_ path: String) throws -> [UInt8] {
    guard let f = fopen(path, "rb") else { throw ArchiveError("open \(path)") }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n == 0 { break }
        out += buf[0..<n]
    }
    return out
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    guard let f = fopen(path, "wb") else { throw ArchiveError("open \(path)") }
    defer { fclose(f) }
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
}
