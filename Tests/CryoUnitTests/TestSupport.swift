import Glibc
@testable import CryoLinux

/// A private directory under /tmp for one test; `remove()` deletes it.
struct TempDir {
    let path: String

    init(_ tag: String = "cryo-unit") throws {
        var template = Array("/tmp/\(tag).XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buf -> String? in
            guard let p = mkdtemp(buf.baseAddress!) else { return nil }
            return String(cString: p)
        }
        guard let made else { throw SyscallError("mkdtemp", "/tmp/\(tag).XXXXXX") }
        path = made
    }

    func remove() { try? FS.removeAll(path) }

    func at(_ rel: String) -> String { rel.isEmpty ? path : path + "/" + rel }

    @discardableResult
    func mkdir(_ rel: String) throws -> String {
        let p = at(rel)
        try FS.mkdirAll(p)
        return p
    }

    @discardableResult
    func file(_ rel: String, _ contents: String = "", mode: mode_t = 0o644) throws -> String {
        let p = at(rel)
        try FS.mkdirAll(FS.parent(p))
        try FS.write(p, contents, flags: O_WRONLY | O_CREAT | O_TRUNC)
        try sys(chmod(p, mode), "chmod", p)
        return p
    }

    func symlink(_ rel: String, to target: String) throws {
        let p = at(rel)
        try FS.mkdirAll(FS.parent(p))
        try sys(Glibc.symlink(target, p), "symlink", p)
    }
}
