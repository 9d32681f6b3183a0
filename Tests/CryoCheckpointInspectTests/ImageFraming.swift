import CRIUImages
import SwiftProtobuf

#if canImport(Glibc)
    import Glibc
#endif

/// Builds image files the way CRIU frames them, for the tests.
enum ImageFraming {
    static func word(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }

    static func image(common: UInt32? = 0x5456_4319, magic: UInt32, entries: [[UInt8]]) -> [UInt8] {
        var out = (common.map(word) ?? []) + word(magic)
        for e in entries { out += word(UInt32(e.count)) + e }
        return out
    }

    static func bytes<M: SwiftProtobuf.Message>(_ m: M) throws -> [UInt8] { try m.serializedBytes(partial: true) }

    static func tempDirectory() -> String {
        var template = Array("/tmp/cryo-inspect-test.XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    static func write(_ path: String, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        precondition(fd >= 0, "open \(path)")
        defer { close(fd) }
        bytes.withUnsafeBytes { precondition(Glibc.write(fd, $0.baseAddress, $0.count) == $0.count) }
    }

    static func remove(_ dir: String) {
        if let d = opendir(dir) {
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." { unlink(dir + "/" + name) }
            }
            closedir(d)
        }
        rmdir(dir)
    }
}
