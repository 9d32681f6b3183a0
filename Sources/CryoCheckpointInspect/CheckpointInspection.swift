/// What `cryo checkpoint inspect` shows about a checkpoint, read from CRIU's images alone
/// (no CRIU needed). This is the JSON of `GET /containers/{id}/checkpoints/{name}/inspect` and
/// of `--format json`. Pids are the container's own (its pid namespace); addresses are numbers.
public struct CheckpointInspection: Codable, Sendable, Equatable {
    /// CRIU's image format version (inventory.img).
    public var imageVersion: UInt32
    public var processes: [InspectedProcess]
    /// The container's mounts (mountpoints-<id>.img of the root task's mount namespace).
    public var mounts: [InspectedMount]
    /// The namespaces the processes are in (CRIU's ids), with the hostname of each UTS one.
    public var namespaces: [InspectedNamespace]
    /// CRIU's dump statistics (stats-dump), when the checkpoint has them.
    public var statistics: DumpStatistics?
    /// Whether environment variables were read (`--env`); without it `environment` is absent.
    public var environmentShown: Bool
    /// A memory search's hits (`--search`/`--search-regex`), absent without one.
    public var matches: [MemoryMatch]?
    /// True when the search stopped at its limit (`MemorySearch.defaultLimit`) of matches.
    public var matchesTruncated: Bool?

    public init(imageVersion: UInt32, processes: [InspectedProcess], mounts: [InspectedMount], namespaces: [InspectedNamespace],
                statistics: DumpStatistics?, environmentShown: Bool) {
        self.imageVersion = imageVersion
        self.processes = processes
        self.mounts = mounts
        self.namespaces = namespaces
        self.statistics = statistics
        self.environmentShown = environmentShown
    }
}

public struct InspectedProcess: Codable, Sendable, Equatable {
    public var pid: UInt32
    public var ppid: UInt32
    public var pgid: UInt32
    public var sid: UInt32
    public var threads: [UInt32]
    /// The kernel's short name (comm).
    public var comm: String
    /// alive, dead, stopped, zombie (CRIU's task_state).
    public var state: String
    /// argv, read from the dumped stack page(s); nil when the pages are not in this checkpoint.
    public var arguments: [String]?
    /// Only with `--env`: they often hold secrets.
    public var environment: [String]?
    public var cwd: String?
    public var root: String?
    public var uid: UInt32?
    public var gid: UInt32?
    public var euid: UInt32?
    public var egid: UInt32?
    /// CRIU's namespace ids of this process, by kind (pid, net, ipc, uts, mnt, user, cgroup, time).
    public var namespaces: [String: UInt32]
    public var files: [InspectedFile]
    public var mappings: [InspectedMapping]
}

public struct InspectedFile: Codable, Sendable, Equatable {
    public var fd: UInt32
    /// file, pipe, fifo, socket, tty, eventfd, eventpoll, signalfd, inotify, fanotify, timerfd, memfd, namespace, …
    public var type: String
    /// The descriptor's own flags (FD_CLOEXEC).
    public var closeOnExec: Bool
    /// The open file's flags (O_RDONLY, O_WRONLY, O_RDWR, O_APPEND, O_NONBLOCK, …), as the kernel keeps them.
    public var flags: UInt32?
    public var path: String?
    /// The file position.
    public var position: UInt64?
    /// A pipe's or fifo's inode: the two ends of one pipe share it.
    public var pipe: UInt32?
    public var socket: InspectedSocket?
}

public struct InspectedSocket: Codable, Sendable, Equatable {
    /// inet, inet6, unix.
    public var family: String
    /// stream, dgram, seqpacket, raw.
    public var type: String
    /// tcp, udp, … for inet sockets.
    public var proto: String?
    /// listen, established, close, … (the kernel's TCP states, also used for unix sockets).
    public var state: String
    /// "addr:port" ("[v6]:port"), or a unix socket's path ("@name" when abstract).
    public var local: String
    public var peer: String?
    public var inode: UInt32
    /// A unix socket's peer inode (0: none).
    public var peerInode: UInt32?
}

public struct InspectedMapping: Codable, Sendable, Equatable {
    public var start: UInt64
    public var end: UInt64
    public var size: UInt64
    /// Bytes of it saved in this checkpoint.
    public var dumped: UInt64
    /// "r-xp" style: read, write, exec, shared or private.
    public var protection: String
    /// heap, stack, vdso, vvar, vsyscall, file, anon-shared, anon, sysvipc, socket, aio, memfd.
    public var kind: String
    public var path: String?
    /// Offset into the file, for a file mapping.
    public var offset: UInt64?
}

public struct InspectedMount: Codable, Sendable, Equatable {
    public var id: UInt32
    public var parent: UInt32
    public var mountpoint: String
    public var fstype: String
    public var source: String
    public var root: String
    public var options: String
    /// CRIU's external key: a bind mount the engine supplied at dump and supplies again at restore.
    public var external: String?
}

public struct InspectedNamespace: Codable, Sendable, Equatable {
    /// pid, net, ipc, uts, mnt, user, cgroup, time.
    public var kind: String
    public var id: UInt32
    public var pids: [UInt32]
    /// The UTS namespace's hostname.
    public var hostname: String?
    /// The image that holds this namespace's own state (utsns-, ipcns-var-, mountpoints-,
    /// netns-<id>.img), when the checkpoint has one: a namespace without one was not the
    /// container's own (CRIU saw it shared with the host or handed to it as external).
    public var image: String?

    public init(kind: String, id: UInt32, pids: [UInt32], hostname: String? = nil, image: String? = nil) {
        (self.kind, self.id, self.pids, self.hostname, self.image) = (kind, id, pids, hostname, image)
    }
}

/// CRIU's stats-dump (times in microseconds).
public struct DumpStatistics: Codable, Sendable, Equatable {
    public var freezingTime: UInt32
    public var frozenTime: UInt32
    public var memdumpTime: UInt32
    public var memwriteTime: UInt32
    public var pagesScanned: UInt64
    public var pagesSkippedParent: UInt64
    public var pagesWritten: UInt64
    public var pagesLazy: UInt64
}
