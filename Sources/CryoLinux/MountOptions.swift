import Glibc

/// OCI mount options ("ro", "nosuid", "rbind", "rprivate", "mode=755", ...)
/// split into mount(2) flags, propagation flags and the data string.
public struct MountOptions: Equatable, Sendable {
    public var flags: UInt = 0
    public var clearedFlags: UInt = 0
    public var propagation: [UInt] = []
    public var data: [String] = []
    public var isBind: Bool { flags & UInt(MS_BIND) != 0 }
    public var isRecursive: Bool { flags & UInt(MS_REC) != 0 }
    public var isReadOnly: Bool { flags & UInt(MS_RDONLY) != 0 }

    static let setFlags: [String: UInt] = [
        "ro": UInt(MS_RDONLY), "nosuid": UInt(MS_NOSUID), "nodev": UInt(MS_NODEV),
        "noexec": UInt(MS_NOEXEC), "sync": UInt(MS_SYNCHRONOUS), "remount": UInt(MS_REMOUNT),
        "mand": UInt(MS_MANDLOCK), "dirsync": UInt(MS_DIRSYNC), "noatime": UInt(MS_NOATIME),
        "nodiratime": UInt(MS_NODIRATIME), "bind": UInt(MS_BIND), "rbind": UInt(MS_BIND | MS_REC),
        "relatime": UInt(MS_RELATIME), "strictatime": UInt(MS_STRICTATIME),
        "nosymfollow": 256 /* MS_NOSYMFOLLOW */, "lazytime": UInt(1 << 25) /* MS_LAZYTIME */,
        "silent": UInt(MS_SILENT), "iversion": UInt(1 << 23) /* MS_I_VERSION */,
    ]
    static let clearFlags: [String: UInt] = [
        "rw": UInt(MS_RDONLY), "suid": UInt(MS_NOSUID), "dev": UInt(MS_NODEV),
        "exec": UInt(MS_NOEXEC), "async": UInt(MS_SYNCHRONOUS), "nomand": UInt(MS_MANDLOCK),
        "atime": UInt(MS_NOATIME), "diratime": UInt(MS_NODIRATIME), "norelatime": UInt(MS_RELATIME),
        "nostrictatime": UInt(MS_STRICTATIME), "symfollow": 256, "nolazytime": UInt(1 << 25),
        "loud": UInt(MS_SILENT), "noiversion": UInt(1 << 23),
    ]
    /// Recursive mount attributes (mount_setattr in the spec); applied here like
    /// their plain forms, which covers the mount itself.
    static let recursiveAliases: [String: String] = [
        "rro": "ro", "rrw": "rw", "rnosuid": "nosuid", "rsuid": "suid", "rnodev": "nodev", "rdev": "dev",
        "rnoexec": "noexec", "rexec": "exec", "rnodiratime": "nodiratime", "rdiratime": "diratime",
        "rrelatime": "relatime", "rnorelatime": "norelatime", "rnoatime": "noatime", "ratime": "atime",
        "rstrictatime": "strictatime", "rnostrictatime": "nostrictatime", "rnosymfollow": "nosymfollow",
        "rsymfollow": "symfollow",
    ]
    static let propagationFlags: [String: UInt] = [
        "private": UInt(MS_PRIVATE), "rprivate": UInt(MS_PRIVATE | MS_REC),
        "shared": UInt(MS_SHARED), "rshared": UInt(MS_SHARED | MS_REC),
        "slave": UInt(MS_SLAVE), "rslave": UInt(MS_SLAVE | MS_REC),
        "unbindable": UInt(MS_UNBINDABLE), "runbindable": UInt(MS_UNBINDABLE | MS_REC),
    ]
    /// Options that are ours, not the kernel's (accepted and ignored).
    static let ignored: Set<String> = ["defaults", "tmpcopyup", "idmap", "ridmap", "copy-symlink", "src-nofollow", "dest-nofollow"]

    public init(_ options: [String]) {
        for raw in options {
            let o = Self.recursiveAliases[raw] ?? raw
            if let f = Self.setFlags[o] { flags |= f; clearedFlags &= ~f }
            else if let f = Self.clearFlags[o] { flags &= ~f; clearedFlags |= f }
            else if let p = Self.propagationFlags[o] { propagation.append(p) }
            else if Self.ignored.contains(o) { continue }
            else { data.append(o) }
        }
    }

    public var dataString: String { data.joined(separator: ",") }
}

public enum Mount {
    public static func mount(_ source: String, _ target: String, type: String?, flags: UInt, data: String = "") throws {
        OffActorCheck.check("mount", target)
        let r = data.isEmpty
            ? Glibc.mount(source, target, type, flags, nil)
            : data.withCString { Glibc.mount(source, target, type, flags, $0) }
        if r != 0 {
            let e = errno
            let t = type.map { " type=\($0)" } ?? ""
            throw SyscallError("mount", "\(source) on \(target)\(t) flags=0x\(String(flags, radix: 16))\(data.isEmpty ? "" : " data=\(data)")", errno: e)
        }
    }

    public static func unmount(_ target: String, flags: Int32 = 0) throws {
        OffActorCheck.check("umount", target)
        if umount2(target, flags) != 0 { throw SyscallError("umount", target) }
    }

    /// Lazily detaches everything mounted at `target` (mounts stacked there too, and the
    /// mounts below it with them). Best effort: stops at the first failure.
    public static func detachAll(_ target: String) {
        while FS.isMountPoint(target) {
            if umount2(target, Int32(MNT_DETACH)) != 0 { return }
        }
    }

    /// Mount points of the calling process, parsed from /proc/self/mountinfo.
    public static func mountPoints() -> [String] {
        guard let text = try? FS.readString("/proc/self/mountinfo") else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            return f.count > 4 ? unescape(String(f[4])) : nil
        }
    }

    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out = [UInt8]()
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 3 < b.count,
               let v = UInt8(String(decoding: b[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v); i += 4
            } else { out.append(b[i]); i += 1 }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
