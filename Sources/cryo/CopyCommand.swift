import ArgumentParser
import CryoArchive
import CryoClient
import CryoLinux
import FoundationEssentials
import Glibc

/// `cryo cp`: docker cp's command. As with docker, the client decides what goes where (the
/// source and destination rules below); the daemon only stats, archives and extracts paths
/// inside the container (HEAD/GET/PUT /containers/{id}/archive).
struct Copy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cp",
        abstract: "Copy files/folders between a container and the local filesystem.",
        discussion: """
        cryo cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-
        cryo cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH

        Use '-' as the source to read a tar archive from stdin and extract it to a directory
        destination in a container; use '-' as the destination to stream a tar archive of a
        container source to stdout. Paths in the container are relative to its root and
        resolved inside it: a symlink in the container never leads outside it.

        SRC_PATH a file: copied to DEST_PATH (a file, or into it if it is a directory; a
        DEST_PATH ending in / must be an existing directory). SRC_PATH a directory: copied
        into DEST_PATH if it exists, else created as DEST_PATH; SRC_PATH ending in /. copies
        the directory's contents instead.

        A running container is copied to and from as it sees its files (its volumes, bind
        mounts and /dev/shm included); a stopped one through its own filesystem, where a path
        on a volume or mount it gets when it runs is refused. Device nodes are neither copied
        into a container nor made locally.
        """)

    @Flag(name: [.customShort("a"), .long], help: "Archive mode: files copied into the container belong to its configured user.")
    var archive = false

    @Flag(name: [.customShort("L"), .customLong("follow-link")], help: "Always follow symbolic links in SRC_PATH.")
    var followLink = false

    @Flag(name: .shortAndLong, help: "Suppress the summary line (it is printed only when stdout is a terminal).")
    var quiet = false

    @Argument(help: "CONTAINER:SRC_PATH, a local path, or - (a tar on stdin).") var source: String
    @Argument(help: "CONTAINER:DEST_PATH, a local path, or - (a tar on stdout).") var destination: String

    func run() throws {
        do {
            guard !source.isEmpty else { throw ValidationError("source can not be empty") }
            guard !destination.isEmpty else { throw ValidationError("destination can not be empty") }
            let (srcContainer, srcPath) = CopyArgument.split(source)
            let (dstContainer, dstPath) = CopyArgument.split(destination)
            switch (srcContainer, dstContainer) {
            case (.some, .some): throw ValidationError("copying between containers is not supported")
            case (nil, nil): throw ValidationError("must specify at least one container source")
            case (let c?, nil): try copyFrom(container: c, path: srcPath, to: dstPath)
            case (nil, let c?): try copyTo(container: c, path: dstPath, from: srcPath)
            }
        } catch {
            throw fail(error)
        }
    }

    var announce: Bool { !quiet && isatty(1) == 1 }

    func stat(_ container: String, _ path: String) throws -> ContainerPathStat {
        let s = try daemon().open("HEAD", "/containers/\(DaemonClient.percentEncode(container))/archive", query: [("path", path)])
        defer { s.close() }
        guard let h = s.head.header(ContainerPathStat.headerName) else {
            throw ClientError.protocolError("no \(ContainerPathStat.headerName) in the answer")
        }
        return try ContainerPathStat.decodeHeader(h)
    }

    // MARK: container → local

    func copyFrom(container: String, path src: String, to dst: String) throws {
        var srcPath = src
        var rebaseName: String?
        if followLink, let st = try? stat(container, srcPath), st.isSymlink {
            rebaseName = CopyArgument.base(srcPath)
            srcPath = st.linkTarget
        }
        let s = try daemon().open("GET", "/containers/\(DaemonClient.percentEncode(container))/archive", query: [("path", srcPath)])
        defer { s.close() }
        if dst == "-" {
            while let chunk = try s.read() { writeFully(1, chunk) }
            return
        }
        guard let h = s.head.header(ContainerPathStat.headerName) else {
            throw ClientError.protocolError("no \(ContainerPathStat.headerName) in the answer")
        }
        let st = try ContainerPathStat.decodeHeader(h)
        let plan = try CopyPlan.make(sourcePath: srcPath, sourceIsDir: st.isDirectory, rebaseName: rebaseName,
                                     destination: CopyArgument.localInfo(dst))
        // The tar goes to a private file beside the destination, then is extracted with the
        // same checks the daemon applies to a client's tar.
        let parent = FS.absolute(plan.directory)
        let tmp = try CopyArgument.tempFile(in: parent)
        defer { unlink(tmp.path) }
        do {
            defer { close(tmp.fd) }
            while let chunk = try s.read() { try FS.writeAll(fd: tmp.fd, chunk, what: tmp.path) }
        }
        let dirFD = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dirFD >= 0 else { throw ClientError.io("opening \(parent): \(String(cString: strerror(errno)))") }
        defer { close(dirFD) }
        let options = ContainerTarExtractor.Options(
            noOverwriteDirNonDir: true, owner: (getuid(), getgid()), limits: .freeSpace(of: dirFD),
            rebase: plan.rebase, skipDevices: true)
        try ContainerTarExtractor.extract(tmp.path, into: dirFD, display: parent, options: options)
        if announce { err("Successfully copied \(CopyArgument.humanSize(st.size)) to \(dst)\n") }
    }

    // MARK: local → container

    func copyTo(container: String, path dst: String, from src: String) throws {
        var dstPath = dst
        var dstInfo = CopyPlan.Destination(path: dst, exists: false, isDir: false)
        if var st = try? stat(container, dstPath) {
            if st.isSymlink {
                var target = st.linkTarget
                if !target.hasPrefix("/") { target = CopyArgument.parent(dstPath) + "/" + target }
                dstPath = target
                dstInfo.path = target
                st = (try? stat(container, target)) ?? st
            }
            if !st.isSymlink {
                dstInfo.exists = true
                dstInfo.isDir = st.isDirectory
            }
        }
        var query: [(String, String)] = [("noOverwriteDirNonDir", "true"), ("copyUIDGID", archive ? "true" : "false")]
        if src == "-" {
            guard dstInfo.isDir else { throw ValidationError("destination \"\(container):\(dst)\" must be a directory") }
            query.insert(("path", dstInfo.path), at: 0)
            let s = try daemon().upload("PUT", "/containers/\(DaemonClient.percentEncode(container))/archive", query: query,
                                        contentType: "application/x-tar", source: .fileDescriptor(0))
            s.close()
            return
        }
        let local = CopyArgument.preservingTrailing(FS.absolute(src), original: src)
        var st = Glibc.stat()
        let statted = fstatat(AT_FDCWD, local, &st, followLink ? 0 : AT_SYMLINK_NOFOLLOW)
        guard statted == 0 else { throw ClientError.io("lstat \(local): \(String(cString: strerror(errno)))") }
        let isDir = st.st_mode & S_IFMT == S_IFDIR
        let plan = try CopyPlan.make(sourcePath: local, sourceIsDir: isDir, rebaseName: nil, destination: dstInfo)
        let topName = plan.rebase?.to ?? CopyArgument.splitBase(local)
        let tmp = try CopyArgument.tempFile(in: "/tmp")
        defer { unlink(tmp.path) }
        var size: Int64 = 0
        do {
            defer { close(tmp.fd) }
            let base = CopyArgument.splitBase(local)
            let source: ContainerTreeTar.Source
            let holder: Int32
            if base == "." || base == "/" {
                holder = try sys(open(CopyArgument.splitDir(local), FS.openPathOnly | O_DIRECTORY | O_CLOEXEC), "open", local)
                source = .directory(fd: holder)
            } else if followLink {
                // The link's target, archived under the link's name.
                let real = FS.absolute(local).withCString { realpath($0, nil) }.map { p in defer { free(p) }; return String(cString: p) } ?? local
                holder = try sys(open(CopyArgument.splitDir(real), FS.openPathOnly | O_DIRECTORY | O_CLOEXEC), "open", real)
                source = .entry(parentFD: holder, name: CopyArgument.splitBase(real))
            } else {
                holder = try sys(open(CopyArgument.splitDir(local), FS.openPathOnly | O_DIRECTORY | O_CLOEXEC), "open", local)
                source = .entry(parentFD: holder, name: base)
            }
            defer { close(holder) }
            var writeError: Error?
            try ContainerTreeTar.write(source, topName: topName) { piece in
                do { try FS.writeAll(fd: tmp.fd, Array(piece), what: tmp.path) } catch { writeError = error; return false }
                return true
            }
            if let writeError { throw writeError }
            size = isDir ? 0 : Int64(st.st_size)
        }
        query.insert(("path", plan.directory), at: 0)
        let fd = open(tmp.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ClientError.io("opening \(tmp.path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let s = try daemon().upload("PUT", "/containers/\(DaemonClient.percentEncode(container))/archive", query: query,
                                    contentType: "application/x-tar", source: .fileDescriptor(fd))
        s.close()
        if announce { err("Successfully copied \(CopyArgument.humanSize(size)) to \(container):\(dstInfo.path)\n") }
    }
}

/// docker's PrepareArchiveCopy: where a tar of the source is extracted so that the copy
/// lands where `cp -a` would put it, and which first name its entries take there.
struct CopyPlan: Equatable {
    struct Destination: Equatable {
        var path: String
        var exists: Bool
        var isDir: Bool
    }

    /// The directory to extract into.
    var directory: String
    /// The source's first name → the name it takes (nil: kept).
    var rebase: (from: String, to: String)?

    static func == (a: CopyPlan, b: CopyPlan) -> Bool {
        a.directory == b.directory && a.rebase?.from == b.rebase?.from && a.rebase?.to == b.rebase?.to
    }

    static func make(sourcePath: String, sourceIsDir: Bool, rebaseName: String?, destination dst: Destination) throws -> CopyPlan {
        let srcBase = CopyArgument.splitBase(sourcePath)   // the first name of the tar's entries
        let dstDir = CopyArgument.splitDir(dst.path), dstBase = CopyArgument.splitBase(dst.path)
        if dst.exists && dst.isDir { return CopyPlan(directory: dst.path, rebase: rebaseName.map { (srcBase, $0) }) }
        if dst.exists && sourceIsDir { throw ValidationError("cannot copy a directory to a file") }
        if !dst.exists && !sourceIsDir && dst.path.hasSuffix("/") {
            throw ValidationError("cannot copy to non-existent directory \(dst.path): no such directory")
        }
        return CopyPlan(directory: dstDir, rebase: (srcBase, dstBase))
    }
}

/// Argument and path helpers of docker's cp.
enum CopyArgument {
    /// "CONTAINER:PATH" → (container, path); a local path (absolute, or starting with ".",
    /// or without ":") → (nil, path).
    static func split(_ arg: String) -> (String?, String) {
        if arg.hasPrefix("/") { return (nil, arg) }
        guard let colon = arg.firstIndex(of: ":") else { return (nil, arg) }
        let container = String(arg[..<colon])
        if container.hasPrefix(".") { return (nil, arg) }
        return (container, String(arg[arg.index(after: colon)...]))
    }

    /// go-archive's SplitPathDirEntry: the parent and the last name, "." for a trailing "/.".
    static func splitDir(_ path: String) -> String {
        let c = cleaned(path)
        if c == "/" { return "/" }
        let i = c.lastIndex(of: "/")!
        return i == c.startIndex ? "/" : String(c[..<i])
    }

    static func splitBase(_ path: String) -> String {
        let c = cleaned(path)
        if c == "/" { return "/" }
        return String(c[c.index(after: c.lastIndex(of: "/")!)...])
    }

    /// Cleaned and absolute ("/" added to a container path), a trailing "/." kept.
    static func cleaned(_ path: String) -> String {
        var c = ContainerCopyPath.clean(path.hasPrefix("/") ? path : "/" + path)
        if ContainerCopyPath.goBase(path) == "." { c = c == "/" ? "/." : c + "/." }
        return c
    }

    static func base(_ path: String) -> String { ContainerCopyPath.goBase(path) }
    static func parent(_ path: String) -> String { splitDir(ContainerCopyPath.clean("/" + path)) }

    static func preservingTrailing(_ cleaned: String, original: String) -> String {
        var c = cleaned
        if ContainerCopyPath.goBase(original) == "." && ContainerCopyPath.goBase(c) != "." { c += c.hasSuffix("/") ? "." : "/." }
        if !c.hasSuffix("/") && original.hasSuffix("/") { c += "/" }
        return c
    }

    /// The local destination as docker's CopyInfoDestinationPath sees it (links followed).
    static func localInfo(_ dst: String) -> CopyPlan.Destination {
        let abs = preservingTrailing(FS.absolute(dst), original: dst)
        var st = stat()
        guard fstatat(AT_FDCWD, abs, &st, 0) == 0 else { return .init(path: abs, exists: false, isDir: false) }
        return .init(path: abs, exists: true, isDir: st.st_mode & S_IFMT == S_IFDIR)
    }

    static func tempFile(in dir: String) throws -> (path: String, fd: Int32) {
        var template = Array((dir + "/.cryo-cp.XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw ClientError.io("creating a temporary file in \(dir): \(String(cString: strerror(errno)))") }
        return (template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }, fd)
    }

    static func humanSize(_ n: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var v = Double(n), i = 0
        while v >= 1000 && i < units.count - 1 { v /= 1000; i += 1 }
        if i == 0 { return "\(n)B" }
        let tenths = Int((v * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)\(units[i])"
    }
}
