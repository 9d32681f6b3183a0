import CRIUImages

#if canImport(Glibc)
    import Glibc
#endif

/// Reads a checkpoint directory (CRIU's images) into a `CheckpointInspection`, the way crit and
/// checkpointctl derive their views: pstree.img for the tree; core-<pid> for comm, state, creds
/// and namespace ids; mm-<pid> for mappings and the argv/env ranges, whose bytes come from the
/// dumped pages; fs-<pid> and fdinfo-<files_id> resolved through files.img; mountpoints-<mnt ns>;
/// utsns-<uts ns>; stats-dump.
public enum CheckpointInspector {
    /// - Parameters:
    ///   - directory: the images (the checkpoint directory, or an archive's `checkpoint/`).
    ///   - statsFile: CRIU's stats-dump (next to the images, or at an archive's root); read if present.
    ///   - environment: read each process's environment (`--env`); otherwise it is left out.
    ///   - search: also search the dumped memory, with `context` bytes around each hit.
    public static func inspect(directory: String, statsFile: String? = nil, environment: Bool = false,
                               search: MemorySearch.Pattern? = nil, context: Int = 32) throws -> CheckpointInspection {
        if let search { try MemorySearch.validate(search) }
        let inventory = try ImageFile(path: directory + "/inventory.img", expecting: ImageMagic.inventory).only(inventory_entry.self)
        let tree = try ImageFile(path: directory + "/pstree.img", expecting: ImageMagic.pstree).messages(pstree_entry.self)
        let files = try fileTable(directory)
        var processes: [InspectedProcess] = []
        var namespaces: [String: [UInt32: [UInt32]]] = [:]
        for entry in tree {
            let process = try inspectProcess(entry, directory: directory, files: files, fdinfoPerID: inventory.fdinfoPerID, environment: environment)
            for (kind, id) in process.namespaces { namespaces[kind, default: [:]][id, default: []].append(process.pid) }
            processes.append(process)
        }
        var nsList: [InspectedNamespace] = []
        for kind in namespaceKinds {
            for (id, pids) in (namespaces[kind] ?? [:]).sorted(by: { $0.key < $1.key }) {
                var ns = InspectedNamespace(kind: kind, id: id, pids: pids, hostname: nil)
                if let prefix = namespaceImages[kind], access(directory + "/\(prefix)-\(id).img", F_OK) == 0 { ns.image = "\(prefix)-\(id).img" }
                if kind == "uts", ns.image != nil { ns.hostname = try utsHostname(directory, id: id) }
                nsList.append(ns)
            }
        }
        let mounts = try processes.first?.namespaces["mnt"].map { try self.mounts(directory, namespace: $0) } ?? []
        let stats = try statsFile.flatMap { path in access(path, F_OK) == 0 ? try statistics(path) : nil }
        var result = CheckpointInspection(imageVersion: inventory.imgVersion, processes: processes, mounts: mounts, namespaces: nsList,
                                          statistics: stats, environmentShown: environment)
        if let search {
            let found = try MemorySearch.search(directory: directory, processes: processes, pattern: search, context: context)
            result.matches = found
            result.matchesTruncated = found.count >= MemorySearch.defaultLimit
        }
        return result
    }

    static let namespaceKinds = ["pid", "net", "ipc", "uts", "mnt", "user", "cgroup", "time"]
    /// The per-namespace images CRIU names by the namespace's id.
    static let namespaceImages = ["net": "netns", "ipc": "ipcns-var", "uts": "utsns", "mnt": "mountpoints"]

    /// The namespace ids CRIU recorded for a task, by kind (absent ones left out).
    static func namespaceIDs(_ i: task_kobj_ids_entry) -> [String: UInt32] {
        let all: [(String, Bool, UInt32)] = [
            ("pid", i.hasPidNsID, i.pidNsID), ("net", i.hasNetNsID, i.netNsID), ("ipc", i.hasIpcNsID, i.ipcNsID),
            ("uts", i.hasUtsNsID, i.utsNsID), ("mnt", i.hasMntNsID, i.mntNsID), ("user", i.hasUserNsID, i.userNsID),
            ("cgroup", i.hasCgroupNsID, i.cgroupNsID), ("time", i.hasTimeNsID, i.timeNsID),
        ]
        var out: [String: UInt32] = [:]
        for (kind, has, id) in all where has { out[kind] = id }
        return out
    }

    static func fileTable(_ directory: String) throws -> [UInt32: file_entry] {
        let path = directory + "/files.img"
        guard access(path, F_OK) == 0 else { return [:] }
        var table: [UInt32: file_entry] = [:]
        for f in try ImageFile(path: path, expecting: ImageMagic.files).messages(file_entry.self) { table[f.id] = f }
        return table
    }

    static func inspectProcess(_ entry: pstree_entry, directory: String, files: [UInt32: file_entry], fdinfoPerID: Bool,
                               environment: Bool) throws -> InspectedProcess {
        let pid = entry.pid
        let core = try ImageFile(path: directory + "/core-\(pid).img", expecting: ImageMagic.core).only(core_entry.self)
        var p = InspectedProcess(
            pid: pid, ppid: entry.ppid, pgid: entry.pgid, sid: entry.sid, threads: entry.threads, comm: core.tc.comm,
            state: KernelNames.taskState(core.tc.taskState), arguments: nil, environment: nil, cwd: nil, root: nil,
            uid: nil, gid: nil, euid: nil, egid: nil, namespaces: [:], files: [], mappings: [])
        if core.hasThreadCore && core.threadCore.hasCreds {
            let c = core.threadCore.creds
            (p.uid, p.gid, p.euid, p.egid) = (c.uid, c.gid, c.euid, c.egid)
        }
        let ids = try taskIDs(directory, pid: pid, core: core)
        p.namespaces = namespaceIDs(ids)
        // A dead (zombie) task has no memory, files or fs images.
        guard core.tc.taskState == 1 || core.tc.taskState == 3 else { return p }

        let fsPath = directory + "/fs-\(pid).img"
        if access(fsPath, F_OK) == 0 {
            let fs = try ImageFile(path: fsPath, expecting: ImageMagic.fs).only(fs_entry.self)
            p.cwd = files[fs.cwdID].map { $0.reg.name }
            p.root = files[fs.rootID].map { $0.reg.name }
        }
        let fdinfoPath = directory + "/fdinfo-\(fdinfoPerID ? ids.filesID : pid).img"
        if access(fdinfoPath, F_OK) == 0 {
            p.files = try ImageFile(path: fdinfoPath, expecting: ImageMagic.fdinfo).messages(fdinfo_entry.self)
                .map { OpenFiles.describe($0, files: files) }
        }
        let mm = try ImageFile(path: directory + "/mm-\(pid).img", expecting: ImageMagic.mm).only(mm_entry.self)
        let memory = try? DumpedMemory(directory: directory, pid: pid)
        p.mappings = mm.vmas.map { vma in
            let file = KernelNames.isFileMapping(status: vma.status) ? files[UInt32(truncatingIfNeeded: vma.shmid)] : nil
            return InspectedMapping(
                start: vma.start, end: vma.end, size: vma.end &- vma.start,
                dumped: memory?.dumpedBytes(from: vma.start, to: vma.end) ?? 0,
                protection: KernelNames.protection(prot: vma.prot, flags: vma.flags),
                kind: KernelNames.mappingKind(status: vma.status, holdsStackStart: vma.start <= mm.mmStartStack && mm.mmStartStack < vma.end),
                path: file.map { $0.reg.name }, offset: file == nil ? nil : vma.pgoff)
        }
        if let memory {
            p.arguments = try stringList(memory, from: mm.mmArgStart, to: mm.mmArgEnd)
            if environment { p.environment = try stringList(memory, from: mm.mmEnvStart, to: mm.mmEnvEnd) }
        }
        return p
    }

    /// The task's ids: CRIU (since 1.x) writes them to ids-<pid>.img and leaves core's `ids`
    /// empty; older images carry them in core.
    static func taskIDs(_ directory: String, pid: UInt32, core: core_entry) throws -> task_kobj_ids_entry {
        let path = directory + "/ids-\(pid).img"
        if access(path, F_OK) == 0 { return try ImageFile(path: path, expecting: ImageMagic.ids).only(task_kobj_ids_entry.self) }
        guard core.hasIds else { throw InspectError("\(path): missing, and core-\(pid).img has no ids either") }
        return core.ids
    }

    /// NUL-separated strings in [start, end) of the dumped memory (argv or the environment).
    static func stringList(_ memory: DumpedMemory, from start: UInt64, to end: UInt64) throws -> [String]? {
        guard end > start, end - start <= 1 << 24, let bytes = try memory.read(start, count: Int(end - start)) else { return nil }
        var parts = bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        if parts.last == "" { parts.removeLast() }
        return parts
    }

    static func mounts(_ directory: String, namespace: UInt32) throws -> [InspectedMount] {
        let path = directory + "/mountpoints-\(namespace).img"
        guard access(path, F_OK) == 0 else { return [] }
        return try ImageFile(path: path, expecting: ImageMagic.mountpoints).messages(mnt_entry.self).map { m in
            InspectedMount(id: m.mntID, parent: m.parentMntID, mountpoint: m.mountpoint, fstype: m.hasFsname ? m.fsname : filesystemName(m.fstype),
                           source: m.source, root: m.root, options: m.options, external: m.hasExtKey ? m.extKey : nil)
        }
    }

    /// CRIU's fstype enum (images/mnt.proto), named as the kernel names the filesystem.
    static func filesystemName(_ raw: UInt32) -> String {
        guard let t = fstype(rawValue: Int(raw)) else { return "fstype(\(raw))" }
        return t == .overlayfs ? "overlay" : "\(t)"
    }

    static func utsHostname(_ directory: String, id: UInt32) throws -> String {
        try ImageFile(path: directory + "/utsns-\(id).img", expecting: ImageMagic.utsns).only(utsns_entry.self).nodename
    }

    public static func statistics(_ path: String) throws -> DumpStatistics? {
        let stats = try ImageFile(path: path, expecting: ImageMagic.stats).only(stats_entry.self)
        guard stats.hasDump else { return nil }
        let d = stats.dump
        return DumpStatistics(freezingTime: d.freezingTime, frozenTime: d.frozenTime, memdumpTime: d.memdumpTime, memwriteTime: d.memwriteTime,
                              pagesScanned: d.pagesScanned, pagesSkippedParent: d.pagesSkippedParent, pagesWritten: d.pagesWritten,
                              pagesLazy: d.pagesLazy)
    }
}
