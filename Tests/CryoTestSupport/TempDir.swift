import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A private directory under /tmp for one test (mkdtemp); `remove()` deletes it.
public struct TempDir: Sendable {
    public let path: String

    public init(_ tag: String = "cryo-test") throws {
        var template = Array("/tmp/\(tag).XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buf -> String? in
            guard let p = mkdtemp(buf.baseAddress!) else { return nil }
            return String(cString: p)
        }
        guard let made else { throw HarnessError("mkdtemp /tmp/\(tag).XXXXXX: \(String(cString: strerror(errno)))") }
        path = made
    }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }

    public func at(_ rel: String) -> String { rel.isEmpty ? path : path + "/" + rel }

    @discardableResult
    public func mkdir(_ rel: String) throws -> String {
        let p = at(rel)
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    @discardableResult
    public func file(_ rel: String, _ contents: String = "", mode: mode_t = 0o644) throws -> String {
        let p = at(rel)
        try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try contents.write(toFile: p, atomically: false, encoding: .utf8)
        guard chmod(p, mode) == 0 else { throw HarnessError("chmod \(p): \(String(cString: strerror(errno)))") }
        return p
    }

    public func symlink(_ rel: String, to target: String) throws {
        let p = at(rel)
        try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        guard Glibc.symlink(target, p) == 0 else { throw HarnessError("symlink \(p): \(String(cString: strerror(errno)))") }
    }
}

/// A failed step of a test's own setup (not an assertion).
public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
