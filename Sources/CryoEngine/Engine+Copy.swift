import CryoArchive
import CryoLinux
import CryoOCI
import CShim
import Dispatch
import FoundationEssentials
import Glibc
import Synchronization

/// The filesystem a `docker cp` works on: a descriptor of the container's root and what
/// it cannot reach through it.
///
/// A running container is copied to and from through `/proc/PID/root` of its init: its root
/// as its own mount namespace has it, with its volumes, bind mounts, tmpfs and /dev/shm —
/// what the container sees. A stopped one through its overlay root on the host (mounted
/// first if it never was; it stays mounted as after a start): the mounts it gets when it
/// runs are not there, so a path on one of them (`mountDestinations`) is refused, and a
/// directory archived leaves them out, rather than serving the directory underneath.
struct CopyRoot: Sendable {
    let fd: Int32
    let running: Bool
    /// Where the container gets something mounted when it runs (its OCI spec's mounts);
    /// empty for a running container.
    let mountDestinations: [String]
    /// The container's process user (uid, gid) when it has a configured one.
    let user: (uid: uid_t, gid: gid_t)?
    let readOnlyRootfs: Bool
}

/// One `GET /containers/{id}/archive`: the stat of the path and its tar, produced on a
/// thread of its own as the client reads it (a slow client holds that thread, never one of
/// the engine's pool).
public final class ContainerArchiveStream: Sendable {
    public let stat: ContainerPathStat
    let produce: @Sendable (_ sink: (UnsafeRawBufferPointer) -> Bool) throws -> Void
    let release: @Sendable () -> Void
    let started = Mutex(false)

    init(stat: ContainerPathStat, produce: @escaping @Sendable ((UnsafeRawBufferPointer) -> Bool) throws -> Void,
         release: @escaping @Sendable () -> Void) {
        self.stat = stat
        self.produce = produce
        self.release = release
    }

    deinit {
        if !started.withLock({ $0 }) { release() }
    }

    /// Runs the tar's producer and hands its pieces to `write` in order (at most a few
    /// pieces ahead of it); `write` throwing (the client went away) stops the producer.
    public func stream(_ write: @Sendable ([UInt8]) async throws -> Void) async throws {
        started.withLock { $0 = true }
        let (chunks, continuation) = AsyncThrowingStream<[UInt8], Error>.makeStream()
        let gate = DispatchSemaphore(value: 4)
        let cancelled = Mutex(false)
        let produce = self.produce, release = self.release
        DetachedThread {
            defer { release() }
            var pending: [UInt8] = []
            pending.reserveCapacity(256 * 1024)
            func flush() -> Bool {
                guard !pending.isEmpty else { return true }
                gate.wait()
                if cancelled.withLock({ $0 }) { return false }
                continuation.yield(pending)
                pending.removeAll(keepingCapacity: true)
                return true
            }
            do {
                try produce { piece in
                    pending.append(contentsOf: piece)
                    return pending.count < 256 * 1024 || flush()
                }
                _ = flush()
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }.start()
        do {
            for try await chunk in chunks {
                try await write(chunk)
                gate.signal()
            }
        } catch {
            cancelled.withLock { $0 = true }
            for _ in 0..<8 { gate.signal() }
            throw error
        }
    }
}

extension Engine {
    /// dockerd's answer for a path that is not there.
    static func copyPathNotFound(_ path: String, _ ref: String) -> CryoFailure {
        CryoFailure(.notFound, "Could not find the file \(path) in container \(ref)")
    }

    /// Opens the filesystem view of container `c` for a copy (see `CopyRoot`). Called under
    /// the container's lock: no start, removal or checkpoint mounts or unmounts meanwhile.
    func openCopyRoot(_ c: StoredContainer) async throws -> CopyRoot {
        let store = images, p = paths, id = c.id
        let pid = c.isRunning ? c.pid : 0
        let hasUser = !(c.config.User ?? "").isEmpty
        let readOnly = c.hostConfig.ReadonlyRootfs ?? false
        return try await blocking { () throws -> CopyRoot in
            let spec = try? JSONDecoder().decode(Spec.self, from: Data(FS.readBytes(p.bundle(id) + "/config.json")))
            let user = hasUser ? spec.map { (uid_t($0.process?.user.uid ?? 0), gid_t($0.process?.user.gid ?? 0)) } : nil
            if pid > 0, let fd = Self.openRunningRoot(pid: pid, id: id) {
                return CopyRoot(fd: fd, running: true, mountDestinations: [], user: user, readOnlyRootfs: readOnly)
            }
            if !FS.isMountPoint(p.rootfs(id)) {
                let lowers: [String]
                do { lowers = store.lowerDirs(for: try store.inspect(c.imageID)) } catch { throw EngineError.noSuchImage(c.imageRef) }
                try RootfsMount.ensure(lowerDirs: lowers, upper: p.upper(id), work: p.work(id), target: p.rootfs(id))
            }
            let fd = try sys(open(p.rootfs(id), FS.openPathOnly | O_DIRECTORY | O_CLOEXEC), "open", p.rootfs(id))
            let destinations = (spec?.mounts ?? []).map { ContainerCopyPath.clean($0.destination) }.filter { $0 != "/" }
            return CopyRoot(fd: fd, running: false, mountDestinations: destinations, user: user, readOnlyRootfs: readOnly)
        }
    }

    /// `/proc/PID/root` of the container's init, when that process is still the container's
    /// (its cgroup names the container, checked after a pidfd pins it) and alive once the
    /// root is open; nil otherwise (it exited meanwhile: the stopped container's view).
    nonisolated static func openRunningRoot(pid: Int32, id: String) -> Int32? {
        let pidfd = cryo_pidfd_open(pid, 0)
        guard pidfd >= 0 else { return nil }
        defer { close(pidfd) }
        guard let cgroup = try? FS.readString("/proc/\(pid)/cgroup"), cgroup.contains(id) else { return nil }
        let fd = open("/proc/\(pid)/root", FS.openPathOnly | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var p = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        if poll(&p, 1, 0) != 0 {   // readable: the process has exited
            close(fd)
            return nil
        }
        return fd
    }

    /// The container lock held only while the view is opened (a copy out reads through the
    /// descriptor afterwards, as docker's `cp` does not hold off a stop).
    func withCopyRoot<T: Sendable>(_ ref: String, _ body: @escaping @Sendable (CopyRoot, StoredContainer) throws -> T) async throws -> T {
        let id = try resolve(ref).id
        let (root, c) = try await withLock(id) { () async throws -> (CopyRoot, StoredContainer) in
            let c = try resolve(id)
            return (try await openCopyRoot(c), c)
        }
        return try await blocking {
            defer { close(root.fd) }
            return try body(root, c)
        }
    }

    /// Where `path` is in the container's view: the directory holding it (every link on the
    /// way followed inside the root) and its name there, not followed (nil: the directory
    /// itself, for a trailing "/" or "/."). Refuses paths a stopped container only has
    /// while it runs and paths on kernel filesystems.
    nonisolated static func locate(_ cp: ContainerCopyPath, in root: CopyRoot, ref: String, raw: String) throws -> CopyLocation {
        let dir: FS.ResolvedInRoot
        do { dir = try FS.resolveInRoot(root.fd, cp.directory, followFinal: true, display: raw) } catch let e as SyscallError {
            if e.errno == ENOENT || e.errno == ENOTDIR { throw missing(cp, root: root, ref: ref, raw: raw) }
            throw CryoFailure("resolving \(raw) in container \(ref)", cause: e)
        }
        var st = stat()
        var name: String? = nil
        var resolved = dir.path
        if cp.base.isEmpty || cp.base == "." {
            guard fstat(dir.fd, &st) == 0 else { close(dir.fd); throw SyscallError("fstat", raw) }
        } else {
            guard fstatat(dir.fd, cp.base, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
                let e = errno
                close(dir.fd)
                if e == ENOENT || e == ENOTDIR { throw missing(cp, root: root, ref: ref, raw: raw) }
                throw CryoFailure("stat \(raw) in container \(ref)", cause: SyscallError("fstatat", raw, errno: e))
            }
            name = cp.base
            resolved = dir.path == "/" ? "/" + cp.base : dir.path + "/" + cp.base
        }
        let location = CopyLocation(dirFD: dir.fd, name: name, stat: st, resolvedPath: resolved)
        do {
            try refuseUnreachable(resolved, root: root, ref: ref, raw: raw)
            if FS.isOnKernelFilesystem(dir.fd) {
                throw EngineError.bad("\(raw) is on a kernel filesystem (/proc, /sys, cgroups…) of container \(ref): cryo does not copy from or into those")
            }
        } catch {
            close(dir.fd)
            throw error
        }
        return location
    }

    /// A path that is not there: refused as unreachable if a stopped container would have it
    /// on a mount when running (where it resolves to with the missing part taken as it is),
    /// else dockerd's 404.
    nonisolated static func missing(_ cp: ContainerCopyPath, root: CopyRoot, ref: String, raw: String) -> CryoFailure {
        if !root.running, let r = try? FS.resolveInRoot(root.fd, cp.absolute, followFinal: false, allowMissing: true) {
            close(r.fd)
            do { try refuseUnreachable(r.path, root: root, ref: ref, raw: raw) } catch let f as CryoFailure { return f } catch {}
        }
        return copyPathNotFound(raw, ref)
    }

    /// A stopped container's path that is (or is below) a mount point of its running self.
    nonisolated static func refuseUnreachable(_ resolved: String, root: CopyRoot, ref: String, raw: String) throws {
        guard !root.running else { return }
        if let m = root.mountDestinations.first(where: { ContainerCopyPath.isAtOrBelow(resolved, $0) }) {
            throw EngineError.conflict("\(raw) is on \(m), which container \(ref) has mounted (a volume, bind mount or tmpfs) only while it runs: start it to copy there")
        }
    }

    /// `HEAD /containers/{id}/archive`: the stat dockerd gives (a link's `linkTarget` is its
    /// target fully resolved inside the container).
    public func statContainerPath(_ ref: String, path raw: String) async throws -> ContainerPathStat {
        let cp = try copyPath(raw)
        return try await withCopyRoot(ref) { root, _ in
            let loc = try Self.locate(cp, in: root, ref: ref, raw: raw)
            defer { close(loc.dirFD) }
            return try Self.pathStat(cp, loc, root: root)
        }
    }

    nonisolated static func pathStat(_ cp: ContainerCopyPath, _ loc: CopyLocation, root: CopyRoot) throws -> ContainerPathStat {
        var linkTarget = ""
        if loc.stat.st_mode & S_IFMT == S_IFLNK {
            let r = try FS.resolveInRoot(root.fd, cp.absolute, followFinal: true, allowMissing: true)
            close(r.fd)
            linkTarget = r.path
        }
        return ContainerPathStat(name: cp.name, stat: loc.stat, linkTarget: linkTarget)
    }

    nonisolated func copyPath(_ raw: String) throws -> ContainerCopyPath {
        do { return try ContainerCopyPath(raw) } catch let e as ArchiveError { throw CryoFailure(e.code, e.message) }
    }

    /// `GET /containers/{id}/archive`: the stat and the tar of the path (see
    /// `ContainerTreeTar` for what is in it). The descriptors it reads through are its own:
    /// the lock is not held while the client reads.
    public func archiveContainerPath(_ ref: String, path raw: String) async throws -> ContainerArchiveStream {
        let cp = try copyPath(raw)
        let id = try resolve(ref).id
        let (root, c) = try await withLock(id) { () async throws -> (CopyRoot, StoredContainer) in
            let c = try resolve(id)
            return (try await openCopyRoot(c), c)
        }
        let located: (CopyLocation, ContainerPathStat)
        do {
            located = try await blocking {
                let loc = try Self.locate(cp, in: root, ref: ref, raw: raw)
                do { return (loc, try Self.pathStat(cp, loc, root: root)) } catch { close(loc.dirFD); throw error }
            }
        } catch {
            close(root.fd)
            throw error
        }
        let (loc, st) = located
        emitContainer("archive-path", c)
        let skip = root.running ? [] : Set(root.mountDestinations)
        return ContainerArchiveStream(stat: st, produce: { sink in
            let source: ContainerTreeTar.Source = loc.name.map { .entry(parentFD: loc.dirFD, name: $0) } ?? .directory(fd: loc.dirFD)
            try ContainerTreeTar.write(source, topName: cp.name, containerPath: loc.resolvedPath, skip: skip, sink: sink)
        }, release: {
            close(loc.dirFD)
            close(root.fd)
        })
    }

    /// `PUT /containers/{id}/archive`: unpacks the tar at `archive` into the directory
    /// `path` (a final link followed, inside the container) with `ContainerTarExtractor`'s
    /// checks, under the container's lock (a removal or start waits for it). `copyUIDGID`
    /// makes the container's configured user the owner of everything, as dockerd does;
    /// otherwise the archive's owners are kept.
    public func extractToContainer(_ ref: String, path raw: String, archive: String, noOverwriteDirNonDir: Bool, copyUIDGID: Bool) async throws {
        let cp = try copyPath(raw)
        let id = try resolve(ref).id
        try await withLock(id) {
            let c = try resolve(id)
            let root = try await openCopyRoot(c)
            try await blocking {
                defer { close(root.fd) }
                let dir: FS.ResolvedInRoot
                do { dir = try FS.resolveInRoot(root.fd, cp.absolute, followFinal: true, display: raw) } catch let e as SyscallError {
                    if e.errno == ENOENT { throw Self.missing(cp, root: root, ref: ref, raw: raw) }
                    if e.errno == ENOTDIR { throw EngineError.bad("extraction point is not a directory") }
                    throw CryoFailure("resolving \(raw) in container \(ref)", cause: e)
                }
                defer { close(dir.fd) }
                var st = stat()
                guard fstat(dir.fd, &st) == 0 else { throw SyscallError("fstat", raw) }
                guard st.st_mode & S_IFMT == S_IFDIR else { throw EngineError.bad("extraction point is not a directory") }
                try Self.refuseUnreachable(dir.path, root: root, ref: ref, raw: raw)
                if !root.running && root.readOnlyRootfs {
                    throw EngineError.bad("container rootfs is marked read-only")
                }
                if FS.isOnKernelFilesystem(dir.fd) {
                    throw EngineError.bad("\(raw) is on a kernel filesystem (/proc, /sys, cgroups…) of container \(ref): cryo does not copy from or into those")
                }
                let dest = try sys(openat(dir.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open", raw)
                defer { close(dest) }
                let options = ContainerTarExtractor.Options(
                    noOverwriteDirNonDir: noOverwriteDirNonDir,
                    owner: copyUIDGID ? root.user : nil,
                    limits: .freeSpace(of: dest),
                    destinationPath: dir.path,
                    unreachable: root.running ? [] : root.mountDestinations)
                do {
                    try ContainerTarExtractor.extract(archive, into: dest, display: dir.path, options: options)
                } catch let e as ArchiveError {
                    throw CryoFailure(e.code, "copying into \(raw) of container \(ref): \(e.message)")
                }
            }
            emitContainer("extract-to-dir", c)
        }
    }
}

/// Where a copy's path is: see `Engine.locate`.
struct CopyLocation: Sendable {
    let dirFD: Int32
    let name: String?
    let stat: stat
    let resolvedPath: String
}
