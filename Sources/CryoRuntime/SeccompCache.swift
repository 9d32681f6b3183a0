import CryoLinux
import CryoOCI
import FoundationEssentials
import Glibc

/// Compiled seccomp programs, one file per profile under `<runtime root>/seccomp/`.
/// libseccomp takes ~10-15 ms to turn Docker's default profile into BPF; done in every
/// container's init it was on the path of every `docker run`. The runtime compiles a
/// profile once (the first create or exec that uses it) and hands the init the stored
/// program, which it loads with one seccomp(2) call. The program is libseccomp's behind
/// `SeccompStub`'s few instructions.
/// A file holds the profile it was made from (canonical JSON) and the program; a lookup
/// compares the profile byte for byte, so the name (a hash) only has to spread files out.
enum SeccompCache {
    static func directory(root: String) -> String { root + "/seccomp" }

    static func canonical(_ profile: Spec.Seccomp) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return Array(try e.encode(profile))
    }

    /// FNV-1a, 64 bits: a file name, not a check.
    static func name(_ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex + ".bpf"
    }

    /// File layout: 8-byte little-endian length of the profile JSON, the JSON, the program.
    static func program(from file: [UInt8], profile json: [UInt8]) -> [UInt8]? {
        guard file.count > 8 else { return nil }
        let n = file[0..<8].enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        guard n == json.count, file.count > 8 + n, file[8..<(8 + n)].elementsEqual(json) else { return nil }
        return Array(file[(8 + n)...])
    }

    /// The stored program for this profile, if there is one.
    static func lookup(_ profile: Spec.Seccomp, root: String) -> [UInt8]? {
        guard let json = try? canonical(profile),
              let file = try? FS.readBytes(directory(root: root) + "/" + name(json)) else { return nil }
        return program(from: file, profile: json)
    }

    /// The program for this profile: the stored one, or compiled now (~10-15 ms, once per
    /// profile) and stored. A root where nothing can be stored gets nil: the init then
    /// compiles with libseccomp itself (without the stub).
    static func program(for profile: Spec.Seccomp, root: String) throws -> [UInt8]? {
        if let p = lookup(profile, root: root) { return p }
        do { try store(profile, root: root) } catch let e as SyscallError where e.errno == EROFS || e.errno == EACCES {
            return nil
        }
        return lookup(profile, root: root)
    }

    /// Compiles the profile and stores it (atomically: concurrent creates write the same bytes).
    static func store(_ profile: Spec.Seccomp, root: String) throws {
        let json = try canonical(profile)
        let dir = directory(root: root)
        try FS.mkdirAll(dir, mode: 0o700)
        let path = dir + "/" + name(json)
        let tmp = path + ".tmp.\(getpid())"
        let fd = try sys(open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600), "open", tmp)
        do {
            var header = [UInt8](repeating: 0, count: 8)
            for i in 0..<8 { header[i] = UInt8((json.count >> (8 * i)) & 0xff) }
            try FS.writeAll(fd: fd, header + json + SeccompStub.prefix(profile), what: tmp)
            try SeccompFilter.export(profile, to: fd)
            close(fd)
            try sys(rename(tmp, path), "rename", path)
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
    }
}
