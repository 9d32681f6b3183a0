import CArchive
import CryoLinux
import Glibc

/// The tar `GET /containers/{id}/archive` sends (`docker cp CONTAINER:PATH …`): one object of
/// a container's filesystem and, for a directory, everything below it, named as dockerd
/// names them ("etc/", "etc/hostname"; "./", "./x" for a trailing "/."; "/", "/bin" for the
/// root). Everything is read relative to descriptors: each directory is opened with
/// `O_NOFOLLOW` from its parent's descriptor, so a container swapping a directory for a
/// symlink while it is read gets the link archived, never followed out of its root.
/// Regular files are opened `O_NOFOLLOW | O_NONBLOCK` and must still be regular files when
/// open (a fifo or device swapped in is never read). Directories on kernel filesystems
/// (`/proc`, `/sys`, cgroups: `FS.kernelFilesystemTypes`) are archived empty. Sockets are
/// left out (as docker does); files with several links become hard-link entries after the
/// first. A file that shrinks while it is read is padded with zeros to the size archived,
/// one that grows is cut there: a running container's files are read as they are.
public enum ContainerTreeTar {
    /// What to archive: the object `name` inside the directory `parentFD` (not followed if
    /// it is a link), or the directory `directoryFD` itself.
    public enum Source {
        case entry(parentFD: Int32, name: String)
        case directory(fd: Int32)
    }

    /// Deepest directory nesting archived (each level holds a descriptor).
    public static let maxDepth = 256

    /// Writes the tar of `source` to `sink` (called with consecutive pieces of the tar; it
    /// returns false to stop: the client went away). `topName` names the top entry; its
    /// descendants are `topName/child` ("/child" when `topName` is "/"). `containerPath` is
    /// where the top is in the container; descendants whose container path is in `skip` are
    /// left out (a stopped container's mount points).
    public static func write(_ source: Source, topName: String, containerPath: String = "/", skip: Set<String> = [],
                             sink: (UnsafeRawBufferPointer) -> Bool) throws {
        try withoutActuallyEscaping(sink) { sink in
            try write(source, topName: topName, containerPath: containerPath, skip: skip, box: SinkBox(sink))
        }
    }

    static func write(_ source: Source, topName: String, containerPath: String, skip: Set<String>, box: SinkBox) throws {
        guard let a = archive_write_new() else { throw ArchiveError.own("archive_write_new failed") }
        defer { archive_write_free(a) }
        archive_write_set_format_pax_restricted(a)
        archive_write_add_filter_none(a)
        archive_write_set_bytes_per_block(a, 64 * 1024)
        archive_write_set_bytes_in_last_block(a, 1)
        let ctx = Unmanaged.passUnretained(box).toOpaque()
        let r = archive_write_open(a, ctx, nil, { _, ctx, buf, n in
            let box = Unmanaged<SinkBox>.fromOpaque(ctx!).takeUnretainedValue()
            guard let buf, box.sink(UnsafeRawBufferPointer(start: buf, count: n)) else {
                box.stopped = true
                return -1
            }
            return n
        }, nil)
        guard r == ARCHIVE_OK else { throw CheckpointArchiveWriter.error(a, "opening the tar stream") }
        var writer = Writer(a: a, box: box, skip: skip)
        switch source {
        case .entry(let parentFD, let name):
            try writer.object(parentFD: parentFD, name: name, entryName: topName, path: containerPath, depth: 0)
        case .directory(let fd):
            let dir = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard dir >= 0 else { throw ArchiveError.own("opening the directory to archive: \(String(cString: strerror(errno)))") }
            defer { close(dir) }
            var st = stat()
            guard fstat(dir, &st) == 0 else { throw ArchiveError.own("fstat: \(String(cString: strerror(errno)))") }
            try writer.directory(dir, st: st, entryName: topName, path: containerPath, depth: 0)
        }
        guard archive_write_close(a) == ARCHIVE_OK else {
            if box.stopped { throw ArchiveError.own("the client stopped reading the archive") }
            throw CheckpointArchiveWriter.error(a, "finishing the tar stream")
        }
    }

    final class SinkBox {
        let sink: (UnsafeRawBufferPointer) -> Bool
        var stopped = false
        init(_ sink: @escaping (UnsafeRawBufferPointer) -> Bool) { self.sink = sink }
    }

    /// A child's entry name under `parent` (see `write`).
    public static func childName(_ parent: String, _ child: String) -> String {
        parent == "/" ? "/" + child : parent + "/" + child
    }

    struct Writer {
        let a: OpaquePointer
        let box: SinkBox
        let skip: Set<String>
        var firstNames: [String: String] = [:]   // "dev:ino" of a multiply-linked file → its first entry
        var buffer = [UInt8](repeating: 0, count: 1 << 20)

        init(a: OpaquePointer, box: SinkBox, skip: Set<String>) {
            self.a = a
            self.box = box
            self.skip = skip
        }

        func failed(_ what: String) -> Error {
            if box.stopped { return ArchiveError.own("the client stopped reading the archive") }
            return CheckpointArchiveWriter.error(a, what)
        }

        /// The object `name` in `parentFD`, not followed.
        mutating func object(parentFD: Int32, name: String, entryName: String, path: String, depth: Int) throws {
            var st = stat()
            guard fstatat(parentFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
                if errno == ENOENT { return }   // gone meanwhile (a running container)
                throw ArchiveError.own("stat \(entryName): \(String(cString: strerror(errno)))")
            }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                let fd = openat(parentFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard fd >= 0 else {
                    if errno == ENOENT { return }
                    if errno == ELOOP || errno == ENOTDIR { return }   // swapped for a link or a file meanwhile: skipped
                    throw ArchiveError.own("opening \(entryName): \(String(cString: strerror(errno)))")
                }
                defer { close(fd) }
                var now = stat()
                guard fstat(fd, &now) == 0 else { throw ArchiveError.own("fstat \(entryName): \(String(cString: strerror(errno)))") }
                try directory(fd, st: now, entryName: entryName, path: path, depth: depth)
            case S_IFREG:
                let fd = openat(parentFD, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
                guard fd >= 0 else {
                    if errno == ENOENT { return }
                    if errno == ELOOP { return }   // swapped for a link meanwhile: skipped
                    throw ArchiveError.own("opening \(entryName): \(String(cString: strerror(errno)))")
                }
                defer { close(fd) }
                var now = stat()
                guard fstat(fd, &now) == 0 else { throw ArchiveError.own("fstat \(entryName): \(String(cString: strerror(errno)))") }
                guard now.st_mode & S_IFMT == S_IFREG else { return }   // swapped for something else: skipped
                try regular(fd, st: now, entryName: entryName)
            case S_IFLNK:
                var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlinkat(parentFD, name, &buf, buf.count - 1)
                guard n >= 0 else { return }
                let target = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                try header(entryName, st: st) { archive_entry_copy_symlink($0, target) }
            case S_IFSOCK:
                return
            default:   // fifos and device nodes: a header, never their contents
                try header(entryName, st: st)
            }
        }

        mutating func directory(_ fd: Int32, st: stat, entryName: String, path: String, depth: Int) throws {
            try header(entryName.hasSuffix("/") ? entryName : entryName + "/", st: st)
            guard !FS.isOnKernelFilesystem(fd) else { return }
            guard depth < ContainerTreeTar.maxDepth else {
                throw ArchiveError("\(entryName) is nested more than \(ContainerTreeTar.maxDepth) directories deep: not archived", code: .invalidArgument)
            }
            for child in try Self.list(fd, entryName) {
                let childPath = ContainerTreeTar.childName(path, child)
                if skip.contains(childPath) { continue }
                try object(parentFD: fd, name: child, entryName: ContainerTreeTar.childName(entryName, child), path: childPath, depth: depth + 1)
            }
        }

        mutating func regular(_ fd: Int32, st: stat, entryName: String) throws {
            if st.st_nlink > 1 {
                let key = "\(st.st_dev):\(st.st_ino)"
                if let first = firstNames[key] {
                    try header(entryName, st: st) { e in
                        archive_entry_copy_hardlink(e, first)
                        archive_entry_set_size(e, 0)
                    }
                    return
                }
                firstNames[key] = entryName
            }
            try header(entryName, st: st)
            var left = Int64(st.st_size)
            var eof = false
            while left > 0 {
                let want = Int(min(Int64(buffer.count), left))
                var n = 0
                if !eof {
                    n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, want) }
                    if n < 0 && errno == EINTR { continue }
                    if n < 0 { throw ArchiveError.own("reading \(entryName): \(String(cString: strerror(errno)))") }
                    if n == 0 { eof = true }
                }
                if eof {   // it shrank: pad to the size in the header
                    for i in 0..<want { buffer[i] = 0 }
                    n = want
                }
                let written = buffer.withUnsafeBytes { archive_write_data(a, $0.baseAddress, n) }
                guard written == n else { throw failed("archiving \(entryName)") }
                left -= Int64(n)
            }
        }

        func header(_ name: String, st: stat, _ adjust: (OpaquePointer) -> Void = { _ in }) throws {
            var st = st
            let e = archive_entry_new()!
            defer { archive_entry_free(e) }
            archive_entry_copy_stat(e, &st)
            archive_entry_copy_pathname(e, name)
            archive_entry_set_nlink(e, 1)
            if st.st_mode & S_IFMT != S_IFREG { archive_entry_set_size(e, 0) }
            adjust(e)
            guard archive_write_header(a, e) == ARCHIVE_OK else { throw failed("archiving \(name)") }
        }

        /// The names in the directory `fd`, sorted (a dup is read, `fd` stays open).
        static func list(_ fd: Int32, _ entryName: String) throws -> [String] {
            let d = dup(fd)
            guard d >= 0, let dir = fdopendir(d) else {
                throw ArchiveError.own("listing \(entryName): \(String(cString: strerror(errno)))")
            }
            defer { closedir(dir) }
            rewinddir(dir)
            var names: [String] = []
            while let ent = readdir(dir) {
                let name = withUnsafePointer(to: ent.pointee.d_name) {
                    $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                }
                if name != "." && name != ".." { names.append(name) }
            }
            return names.sorted()
        }
    }
}
