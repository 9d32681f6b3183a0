import CShim
import CryoCheckpointInspect
import CryoLinux
import Glibc

/// What `cryo checkpoint check` looks at, process by process (the container's cgroup): each
/// fd's target (/proc/PID/fd), its mount (/proc/PID/fdinfo against /proc/PID/mountinfo), the
/// container's unix sockets and their peers (`ss` in the container's network namespace), and
/// device mappings (/proc/PID/maps). Each finding is something CRIU 4.2 refuses to dump, or
/// that cryo does not hand to it (a terminal, a socket connected to the host).
enum CheckpointabilityScan {
    /// Whether CRIU dumps an open device with this number (its `dump_chrdev`): the memory
    /// devices (major 1: null, zero, full, random, urandom, kmsg…) and autofs (10:235), which
    /// it reopens by path, and tun (10:200), which it has a dumper for. Any other character
    /// device fails the dump as unsupported; block devices are not counted on either.
    static func criuDumps(major: UInt32, minor: UInt32, character: Bool) -> Bool {
        character && (major == 1 || (major == 10 && (minor == 200 || minor == 235)))
    }
    /// anon_inode kinds CRIU has no dumper for.
    static let unsupportedAnon: [String: (kind: String, reason: String)] = [
        "anon_inode:[io_uring]": ("io_uring", "CRIU cannot checkpoint io_uring instances"),
        "anon_inode:[userfaultfd]": ("unsupported-file", "CRIU cannot checkpoint a userfaultfd"),
        "anon_inode:[perf_event]": ("unsupported-file", "CRIU cannot checkpoint perf events"),
        "anon_inode:[bpf-prog]": ("unsupported-file", "CRIU cannot checkpoint a BPF program fd"),
        "anon_inode:[bpf_link]": ("unsupported-file", "CRIU cannot checkpoint a BPF link fd"),
    ]

    /// The problems (each stops a checkpoint) and the notes (worth knowing, not in the way).
    static func scan(pids: [pid_t]) -> (problems: [CheckpointProblem], notes: [CheckpointProblem]) {
        var problems: [CheckpointProblem] = [], notes: [CheckpointProblem] = []
        var socketsByInode: [UInt64: (pid: pid_t, comm: String, fd: Int32)] = [:]
        for pid in pids {
            let comm = ((try? FS.readString("/proc/\(pid)/comm")) ?? "?").trimmed
            let mounts = mountIDs(pid)
            let fds = ((try? FS.listDirectory("/proc/\(pid)/fd")) ?? []).compactMap { Int32($0) }.sorted()
            for fd in fds {
                guard let target = FS.readlink("/proc/\(pid)/fd/\(fd)") else { continue }
                func add(_ kind: String, _ reason: String) {
                    problems.append(CheckpointProblem(pid: pid, comm: comm, fd: fd, kind: kind, resource: target, reason: reason))
                }
                if target.hasPrefix("socket:[") {
                    if let ino = UInt64(target.dropFirst(8).dropLast()) { socketsByInode[ino] = (pid, comm, fd) }
                } else if let anon = unsupportedAnon[target] {
                    add(anon.kind, anon.reason)
                } else if target.hasPrefix("/dev/pts/"), fdMountID(pid, fd).map(mounts.contains) ?? false {
                    // The container's own terminal (-t): cryo hands it to CRIU (orphan pts master).
                    notes.append(CheckpointProblem(pid: pid, comm: comm, fd: fd, kind: "terminal", resource: target,
                                                   reason: "a terminal (the container runs with -t); cryo checkpoints it through CRIU's orphan pts master"))
                } else if target.hasPrefix("/") {
                    var st = stat()
                    let isDevice = stat("/proc/\(pid)/fd/\(fd)", &st) == 0 && (st.st_mode & S_IFMT == S_IFCHR || st.st_mode & S_IFMT == S_IFBLK)
                    let (major, minor) = (UInt32(cryo_major(UInt64(st.st_rdev))), UInt32(cryo_minor(UInt64(st.st_rdev))))
                    if isDevice && !criuDumps(major: major, minor: minor, character: st.st_mode & S_IFMT == S_IFCHR) {
                        add("device", "an open device CRIU cannot checkpoint (device \(major):\(minor); "
                            + "only the memory devices such as /dev/null and /dev/urandom, and /dev/net/tun, are restored)")
                    } else if let m = fdMountID(pid, fd), !mounts.isEmpty, !mounts.contains(m) {
                        add("host-file", "a file from outside the container's filesystem (mount \(m) is not one of the container's), "
                            + "e.g. a host file given as stdio: CRIU cannot reopen it at restore")
                    }
                }
            }
            problems += deviceMappings(pid, comm: comm)
        }
        problems += externalUnixSockets(pids: pids, sockets: socketsByInode)
        return (problems, notes)
    }

    static func mountIDs(_ pid: pid_t) -> Set<Int> {
        let text = (try? FS.readString("/proc/\(pid)/mountinfo")) ?? ""
        return Set(text.split(separator: "\n").compactMap { $0.split(separator: " ").first.flatMap { Int($0) } })
    }

    static func fdMountID(_ pid: pid_t, _ fd: Int32) -> Int? {
        let text = (try? FS.readString("/proc/\(pid)/fdinfo/\(fd)")) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix("mnt_id:") {
            return Int(String(line.dropFirst(7)).trimmed)
        }
        return nil
    }

    /// Mappings of a device other than /dev/zero (GPU, framebuffer, …).
    static func deviceMappings(_ pid: pid_t, comm: String) -> [CheckpointProblem] {
        let text = (try? FS.readString("/proc/\(pid)/maps")) ?? ""
        var seen = Set<String>(), out: [CheckpointProblem] = []
        for line in text.split(separator: "\n") {
            let cols = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard cols.count == 6 else { continue }
            let path = String(cols[5]).trimmed
            guard path.hasPrefix("/dev/"), !path.hasPrefix("/dev/zero"), !path.hasPrefix("/dev/shm/"), seen.insert(path).inserted else { continue }
            out.append(CheckpointProblem(pid: pid, comm: comm, kind: "device", resource: "mapping of \(path)",
                                         reason: "a memory mapping of a device: CRIU cannot checkpoint device memory"))
        }
        return out
    }

    /// Unix sockets of the container connected to a socket no process of the container holds
    /// (a host daemon's, through a bind-mounted path): CRIU refuses them unless told they are
    /// external, and cryo cannot reconnect them at restore. Peers come from `ss -x` (sock_diag)
    /// in the container's network namespace.
    static func externalUnixSockets(pids: [pid_t], sockets: [UInt64: (pid: pid_t, comm: String, fd: Int32)]) -> [CheckpointProblem] {
        guard let first = pids.first, !sockets.isEmpty else { return [] }
        guard let run = try? Spawn.run(path: "/usr/bin/nsenter", args: ["nsenter", "--net=/proc/\(first)/ns/net", "ss", "-x", "-a", "-n", "-H"],
                                       env: ["PATH=/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL=C"], timeoutMs: 30_000),
              run.status == 0, !run.timedOut
        else {
            return [CheckpointProblem(pid: nil, comm: nil, kind: "unsupported-file", resource: "unix sockets",
                                      reason: "could not list the container's unix sockets (nsenter … ss -x failed), so their peers are unknown")]
        }
        var out: [CheckpointProblem] = []
        for line in run.stdoutString.split(separator: "\n") {
            // Netid State Recv-Q Send-Q Local-Address Local-Inode Peer-Address Peer-Inode
            let c = line.split(separator: " ", omittingEmptySubsequences: true)
            guard c.count >= 8, let ino = UInt64(c[c.count - 3]), let peer = UInt64(c[c.count - 1]), peer != 0,
                  let holder = sockets[ino], sockets[peer] == nil else { continue }
            let name = String(c[c.count - 4]) == "*" ? "unix socket [\(ino)]" : "unix socket \(c[c.count - 4]) [\(ino)]"
            out.append(CheckpointProblem(pid: holder.pid, comm: holder.comm, fd: holder.fd, kind: "external-unix-socket",
                                         resource: name + ", connected to socket [\(peer)]",
                                         reason: "a unix socket connected to a peer outside the container: CRIU refuses external "
                                             + "unix sockets and the peer cannot be restored with the container"))
        }
        return out
    }
}
