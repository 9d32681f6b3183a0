import Glibc

/// Linux namespace kinds, with their OCI names, clone flags and /proc/PID/ns names.
public enum NamespaceKind: String, CaseIterable, Sendable, Codable {
    case pid, network, mount, ipc, uts, user, cgroup, time

    public var cloneFlag: Int32 {
        switch self {
        case .pid: return 0x2000_0000      // CLONE_NEWPID
        case .network: return 0x4000_0000  // CLONE_NEWNET
        case .mount: return 0x0002_0000    // CLONE_NEWNS
        case .ipc: return 0x0800_0000      // CLONE_NEWIPC
        case .uts: return 0x0400_0000      // CLONE_NEWUTS
        case .user: return 0x1000_0000     // CLONE_NEWUSER
        case .cgroup: return 0x0200_0000   // CLONE_NEWCGROUP
        case .time: return 0x0000_0080     // CLONE_NEWTIME
        }
    }

    /// The entry under /proc/PID/ns/.
    public var procName: String {
        switch self {
        case .network: return "net"
        case .mount: return "mnt"
        default: return rawValue
        }
    }
}
