import CryoLinux
import Foundation
import Glibc
import CryoTestSupport
import Testing
@testable import CryoImages

/// Runs a program and returns (status, stdout+stderr).
private func run(_ exe: String, _ args: [String], env: [String: String] = [:]) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    var environment = ProcessInfo.processInfo.environment
    for (k, v) in env { environment[k] = v }
    p.environment = environment
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let out = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: out, as: UTF8.self))
}

private let repo = FS.parent(FS.parent(FS.parent(#filePath)))

@Suite struct ImportRootfsTests {
    static let rootfs: [Tar.Entry] = [
        .dir("bin"), .bytes("bin/tool", Array("#!/bin/sh\necho hi\n".utf8), mode: 0o755), .symlink("bin/sh", "tool"),
        .dir("etc"), .file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), .hardlink("etc/passwd-", "etc/passwd"),
        Tar.Entry(path: "tmp", kind: .dir, mode: 0o1777),
    ]

    @Test(arguments: [Tar.Compression.gzip, .zstd, .none])
    func importsRootfsTarball(compression: Tar.Compression) throws {
        let s = try TempDir()
        defer { s.remove() }
        let store = try ImageStore(root: s.at("store"))
        let archive = s.at("rootfs.tar")
        try Tar.write(archive, Self.rootfs, compression: compression)

        let image = try store.importRootfs(archive: archive, reference: "imported")
        #expect(image.repoTags == ["imported:latest"])
        #expect(image.manifestDigest == nil)
        #expect(image.layers == [try ArchiveReader.uncompressedDigest(archive)])
        #expect(try store.inspect("imported").id == image.id)
        #expect(try Digest.of(file: store.configPath(image.id)) == image.id)
        let cfg = try store.config(of: image)
        #expect(cfg.os == "linux" && cfg.architecture == "amd64")
        #expect(cfg.rootfs == .init(type: "layers", diff_ids: [image.layers[0].description]))
        #expect(cfg.created?.hasSuffix("Z") == true && cfg.created?.count == 20)
        #expect(cfg.config == nil)

        let layer = store.layerPath(image.layers[0])
        #expect(try FS.readString(layer + "/bin/tool") == "#!/bin/sh\necho hi\n")
        #expect(FS.readlink(layer + "/bin/sh") == "tool")
        var a = stat(), b = stat()
        #expect(stat(layer + "/etc/passwd", &a) == 0 && stat(layer + "/etc/passwd-", &b) == 0 && a.st_ino == b.st_ino)
        #expect(stat(layer + "/tmp", &a) == 0 && a.st_mode & 0o7777 == 0o1777)
        #expect(store.lowerDirs(for: image) == [layer])

        // without a reference: an untagged image (found by id) sharing the same layer
        let untagged = try store.importRootfs(archive: archive, reference: nil,
                                              changes: .init(Env: ["PATH=/bin"], Cmd: ["sh"]))
        #expect(untagged.repoTags.isEmpty)
        #expect(untagged.id != image.id)
        #expect(untagged.layers == image.layers)
        #expect(try store.config(of: store.inspect(untagged.id.description)).config?.Cmd == ["sh"])
        #expect(try FS.listDirectory(s.at("store/layers/sha256")) == [image.layers[0].hex])
        #expect(try store.list().count == 2)
        #expect(try FS.listDirectory(s.at("store/tmp")).isEmpty)
    }

    @Test(arguments: [
        ([Tar.Entry.file("ok", "1"), .file("../x", "evil")], "contains a \"..\" component"),
        ([Tar.Entry.file("ok", "1"), .file("/x", "evil")], "is absolute"),
        ([Tar.Entry.symlink("l", "/tmp"), .file("l/x", "evil")], "is a symlink"),
    ])
    func unsafeTarballIsRefusedAndNothingKept(entries: [Tar.Entry], reason: String) throws {
        let s = try TempDir()
        defer { s.remove() }
        let store = try ImageStore(root: s.at("store"))
        let archive = s.at("evil.tar.gz")
        try Tar.write(archive, entries, compression: .gzip)
        #expect { try store.importRootfs(archive: archive, reference: "evil") } throws: { "\($0)".contains(reason) }
        #expect(try FS.listDirectory(s.at("store/layers/sha256")).isEmpty)
        #expect(try FS.listDirectory(s.at("store/configs/sha256")).isEmpty)
        #expect(try FS.listDirectory(s.at("store/tmp")).isEmpty)
        #expect(try store.list().isEmpty)
        #expect(!FS.exists(s.at("store/layers/sha256/x")) && !FS.exists(s.at("store/layers/x")))
    }

    @Test func missingOrNonTarArchiveIsRefused() throws {
        let s = try TempDir()
        defer { s.remove() }
        let store = try ImageStore(root: s.at("store"))
        #expect(throws: (any Error).self) { try store.importRootfs(archive: s.at("nope.tar")) }
        try FS.atomicWrite(s.at("junk.tar"), Array(repeating: 0x41, count: 5000), durable: false)
        #expect(throws: (any Error).self) { try store.importRootfs(archive: s.at("junk.tar")) }
        #expect(try FS.listDirectory(s.at("store/layers/sha256")).isEmpty)
        #expect(try FS.listDirectory(s.at("store/tmp")).isEmpty)
        #expect(try store.list().isEmpty)
    }
}

@Suite struct MakeImageScriptTests {
    /// scripts/make-image.py output loads through ImageStore.load, in every format.
    @Test(arguments: [("docker", false), ("docker", true), ("docker-legacy", false), ("oci", false), ("oci", true)])
    func makeImageOutputLoads(format: String, gzip: Bool) throws {
        let python = try requireExecutable("python3", "scripts/make-image.py needs it")
        let s = try TempDir()
        defer { s.remove() }
        let rootfs = s.at("rootfs")
        try FS.mkdirAll(rootfs + "/bin")
        try FS.mkdirAll(rootfs + "/etc")
        try FS.atomicWrite(rootfs + "/bin/tool", Array("tool\n".utf8), mode: 0o755, durable: false)
        #expect(symlink("tool", rootfs + "/bin/sh") == 0)
        try FS.atomicWrite(rootfs + "/etc/hostname", Array("h\n".utf8), mode: 0o644, durable: false)
        #expect(link(rootfs + "/etc/hostname", rootfs + "/etc/hostname2") == 0)
        let top = s.at("top")
        try FS.mkdirAll(top + "/etc")
        try FS.atomicWrite(top + "/etc/motd", Array("top\n".utf8), mode: 0o644, durable: false)

        var args = [repo + "/scripts/make-image.py", "--rootfs", rootfs, "--layer", top, "--tag", "mi:1",
                    "--format", format, "--cmd", "[\"sh\"]", "--entrypoint", "[\"/bin/tool\"]", "--env", "FOO=bar",
                    "--workdir", "/work", "--user", "65534", "--label", "a=b", "-o", s.at("image.tar")]
        if gzip { args.append("--gzip") }
        let (status, output) = try run(python, args, env: ["SOURCE_DATE_EPOCH": "1700000000"])
        try #require(status == 0, "make-image.py failed: \(output)")

        // deterministic: the same inputs give the same bytes
        args[args.count - (gzip ? 2 : 1)] = s.at("image2.tar")
        let (status2, output2) = try run(python, args, env: ["SOURCE_DATE_EPOCH": "1700000000"])
        try #require(status2 == 0, "make-image.py failed: \(output2)")
        #expect(try FS.readBytes(s.at("image.tar")) == FS.readBytes(s.at("image2.tar")))

        let store = try ImageStore(root: s.at("store"))
        let loaded = try store.load(archive: s.at("image.tar"))
        try #require(loaded.count == 1)
        let image = loaded[0]
        #expect(image.repoTags == ["mi:1"])
        #expect(image.layers.count == 2)
        #expect((image.manifestDigest != nil) == (format == "oci"))
        let cfg = try store.config(of: image)
        #expect(cfg.os == "linux" && cfg.architecture == "amd64")
        #expect(cfg.created == "2023-11-14T22:13:20Z")
        #expect(cfg.config?.Cmd == ["sh"])
        #expect(cfg.config?.Entrypoint == ["/bin/tool"])
        #expect(cfg.config?.Env == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "FOO=bar"])
        #expect(cfg.config?.WorkingDir == "/work" && cfg.config?.User == "65534" && cfg.config?.Labels == ["a": "b"])

        let lowers = store.lowerDirs(for: image)
        #expect(lowers == [store.layerPath(image.layers[1]), store.layerPath(image.layers[0])])
        #expect(try FS.readString(lowers[0] + "/etc/motd") == "top\n")
        #expect(try FS.readString(lowers[1] + "/bin/tool") == "tool\n")
        #expect(FS.readlink(lowers[1] + "/bin/sh") == "tool")
        var a = stat(), b = stat()
        #expect(stat(lowers[1] + "/etc/hostname", &a) == 0 && stat(lowers[1] + "/etc/hostname2", &b) == 0
                && a.st_ino == b.st_ino)
        #expect(stat(lowers[1] + "/bin/tool", &a) == 0 && a.st_mode & 0o777 == 0o755)
        let entries = try ArchiveReader.list(s.at("image.tar"))
        #expect(entries.allSatisfy { $0.uid == 0 && $0.gid == 0 })
    }
}

@Suite(.serialized) struct OverlayRootfsTests {
    static func testImages() throws -> String {
        let dir = ProcessInfo.processInfo.environment["CRYO_TEST_IMAGES"] ?? "/var/cache/cryo/test-images"
        let (status, output) = try run("/bin/bash", [repo + "/scripts/make-test-images.sh", dir])
        guard status == 0 else { throw CryoFailure(.internal, "make-test-images.sh failed (\(status)): \(output)") }
        return dir
    }

    /// The test images load, the layered image's overlay mount shows its whiteouts applied,
    /// and writes land in the upper directory. Needs root (mount, whiteout devices).
    @Test func layeredImageOverlayAppliesWhiteouts() throws {
        try requireRoot("overlay mounts and whiteout devices")
        try requireExecutable("python3", "scripts/make-image.py needs it")
        let images = try Self.testImages()
        let s = try TempDir()
        defer { s.remove() }
        let store = try ImageStore(root: s.at("store"))
        let busybox = try #require(try store.load(archive: images + "/busybox.tar").first)
        let busyboxOCI = try #require(try store.load(archive: images + "/busybox-oci.tar").first)
        let layered = try #require(try store.load(archive: images + "/layered.tar").first)
        let imported = try store.importRootfs(archive: images + "/busybox-rootfs.tar.gz", reference: "imported")
        #expect(busybox.repoTags == ["busybox:latest"])
        // the same rootfs, config and created time: one image with both tags
        #expect(busyboxOCI.id == busybox.id)
        // load reports the archive's own tags; the store holds both
        #expect(busyboxOCI.repoTags == ["busybox-oci:latest"])
        #expect(try store.inspect("busybox:latest").repoTags == ["busybox:latest", "busybox-oci:latest"])
        #expect(busyboxOCI.manifestDigest != nil)
        #expect(layered.repoTags == ["layered:latest"])
        #expect(busyboxOCI.layers == busybox.layers)
        #expect(layered.layers.count == 3 && layered.layers[0] == busybox.layers[0])
        #expect(try store.config(of: busybox).config?.Cmd == ["sh"])
        #expect(FS.readlink(store.layerPath(imported.layers[0]) + "/bin/sh") == "busybox")

        for dir in ["upper", "work", "merged"] { try FS.mkdirAll(s.at(dir)) }
        let merged = s.at("merged")
        try OverlayRootfs.mount(lowerDirs: store.lowerDirs(for: layered), upper: s.at("upper"),
                                work: s.at("work"), target: merged)
        var mounted = true
        defer { if mounted { try? OverlayRootfs.unmount(target: merged) } }
        #expect(Mount.mountPoints().contains(merged))

        #expect(!FS.exists(merged + "/x"))                               // .wh.x in layer 3
        #expect(try FS.listDirectory(merged + "/d").sorted() == ["c"])   // d/.wh..wh..opq in layer 3
        #expect(try FS.readString(merged + "/y") == "y from layer 3\n")
        #expect(try FS.readString(merged + "/top") == "layer 3\n")
        #expect(FS.readlink(merged + "/bin/sh") == "busybox")
        #expect(try FS.readString(merged + "/etc/group").hasPrefix("root:x:0:"))

        // writes go to the upper dir; a deletion there becomes a whiteout device
        try FS.atomicWrite(merged + "/new", Array("n".utf8), durable: false)
        #expect(unlink(merged + "/top") == 0)
        #expect(try FS.readString(s.at("upper/new")) == "n")
        var st = stat()
        #expect(lstat(s.at("upper/top"), &st) == 0 && st.st_mode & S_IFMT == S_IFCHR && st.st_rdev == 0)
        #expect(FS.exists(store.layerPath(layered.layers[2]) + "/top"))

        try OverlayRootfs.unmount(target: merged)
        mounted = false
        #expect(!Mount.mountPoints().contains(merged))
        #expect(!FS.exists(merged + "/y"))
    }

    /// More layers than fit in one page of mount options as absolute paths: mounted through
    /// /proc/self/fd paths; the bottom layer is still visible.
    @Test func manyLayersFitThroughFdPaths() throws {
        try requireRoot("overlay mounts")
        let s = try TempDir()
        defer { s.remove() }
        let long = String(repeating: "l", count: 60)
        var lowers: [String] = []
        for i in 0..<120 {
            let dir = s.at("layers/\(long)-\(i)")
            try FS.mkdirAll(dir)
            try FS.atomicWrite(dir + "/f\(i)", Array("\(i)".utf8), durable: false)
            try FS.atomicWrite(dir + "/same", Array("\(i)".utf8), durable: false)
            lowers.insert(dir, at: 0)  // top-most first
        }
        #expect(OverlayRootfs.options(lowerDirs: lowers, upper: s.at("upper"), work: s.at("work")) == nil)
        #expect(OverlayRootfs.options(lowerDirs: ["/a", "/b"], upper: "/u", work: "/w") == "lowerdir=/a:/b,upperdir=/u,workdir=/w")
        #expect(OverlayRootfs.options(lowerDirs: ["/a:b"], upper: "/u", work: "/w") == nil)
        for dir in ["upper", "work", "merged"] { try FS.mkdirAll(s.at(dir)) }
        let merged = s.at("merged")
        try OverlayRootfs.mount(lowerDirs: lowers, upper: s.at("upper"), work: s.at("work"), target: merged)
        defer { try? OverlayRootfs.unmount(target: merged) }
        #expect(try FS.readString(merged + "/f0") == "0")
        #expect(try FS.readString(merged + "/f119") == "119")
        #expect(try FS.readString(merged + "/same") == "119")   // the top-most layer wins
        #expect(try FS.listDirectory(merged).count == 121)
    }
}
