import Glibc

/// CRIU's `utsns-<id>.img`: two magics, then one size-prefixed `UtsnsEntry` protobuf message
/// (`nodename` = 1, `domainname` = 2). A clone's restore must not come back with its
/// source's hostname, so its copy of the images gets the new one before CRIU runs.
public enum UTSNamespaceImage {
    public static func setHostname(_ hostname: String, imageDir: String) throws {
        guard let d = opendir(imageDir) else { throw ArchiveError.own("cannot read \(imageDir): \(String(cString: strerror(errno)))") }
        var names: [String] = []
        while let e = readdir(d) {
            let n = withUnsafePointer(to: e.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            if n.hasPrefix("utsns-") && n.hasSuffix(".img") { names.append(n) }
        }
        closedir(d)
        for n in names {
            let path = imageDir + "/" + n
            let bytes = try CheckpointArchiveReader.readAll(path)
            let out = try rewrite(bytes, hostname: hostname, file: path)
            let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { throw ArchiveError.own("cannot write \(path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            guard out.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == out.count else {
                throw ArchiveError.own("writing \(path): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// The image with field 1 of its message replaced; other fields kept as they were.
    public static func rewrite(_ bytes: [UInt8], hostname: String, file: String) throws -> [UInt8] {
        guard bytes.count >= 12 else { throw ArchiveError("\(file) is too short for a CRIU image") }
        let size = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        guard size <= bytes.count - 12 else { throw ArchiveError("\(file): its entry is cut short") }
        let msg = Array(bytes[12..<(12 + size)])
        var out: [UInt8] = []
        var i = 0
        func varint() throws -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while i < msg.count {
                let b = msg[i]; i += 1
                v |= UInt64(b & 0x7f) << shift
                if b & 0x80 == 0 { return v }
                shift += 7
                if shift > 63 { break }
            }
            throw ArchiveError("\(file): a malformed protobuf varint")
        }
        func putVarint(_ v: UInt64) {
            var v = v
            while v >= 0x80 { out.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
            out.append(UInt8(v))
        }
        var replaced = false
        while i < msg.count {
            let start = i
            let key = try varint()
            switch key & 7 {
            case 0: _ = try varint()
            case 1: i += 8
            case 5: i += 4
            case 2:
                let n = Int(try varint())
                guard n <= msg.count - i else { throw ArchiveError("\(file): a field runs past the message") }
                i += n
            default: throw ArchiveError("\(file): unsupported protobuf wire type \(key & 7)")
            }
            guard i <= msg.count else { throw ArchiveError("\(file): a field runs past the message") }
            if key == (1 << 3 | 2) {
                putVarint(key)
                putVarint(UInt64(hostname.utf8.count))
                out += Array(hostname.utf8)
                replaced = true
            } else {
                out += msg[start..<i]
            }
        }
        guard replaced else { throw ArchiveError("\(file) has no nodename") }
        let n = out.count
        return Array(bytes[0..<8]) + [UInt8(n & 0xff), UInt8(n >> 8 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 24 & 0xff)]
            + out + bytes[(12 + size)...]
    }
}
