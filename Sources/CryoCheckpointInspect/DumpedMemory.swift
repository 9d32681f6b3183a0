import CRIUImages

#if canImport(Glibc)
    import Glibc
#endif

/// A process's dumped memory: `pagemap-<pid>.img` says which pages were saved, and
/// `pages-<pages_id>.img` holds the bytes of the pages marked present, back to back in
/// pagemap order. Pages kept in a parent checkpoint (pre-dump) or left for lazy restore are
/// not in this file and read as missing.
public struct DumpedMemory: Sendable {
    /// One pagemap entry: `pages` pages from `address`; `fileOffset` is where they are in the
    /// pages file, nil when the data is elsewhere (parent images or lazy).
    public struct Run: Sendable, Equatable {
        public let address: UInt64
        public let pages: UInt64
        public let fileOffset: UInt64?
        public var end: UInt64 { address &+ pages &* DumpedMemory.pageSize }
    }

    public static let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))
    // pagemap_entry.flags (CRIU's images/pagemap.proto comments, criu/include/pagemap.h).
    static let inParent: UInt32 = 1
    static let lazy: UInt32 = 2
    static let present: UInt32 = 4

    public let pagesPath: String
    /// Sorted by address, as CRIU writes them.
    public let runs: [Run]

    public init(directory: String, pid: UInt32) throws {
        let file = try ImageFile(path: directory + "/pagemap-\(pid).img", expecting: ImageMagic.pagemap)
        guard let headBytes = file.entries.first else { throw InspectError("\(file.path): no pagemap_head entry") }
        let head = try pagemap_head(serializedBytes: headBytes, partial: true)
        var decoded: [pagemap_entry] = []
        for (i, bytes) in file.entries.dropFirst().enumerated() {
            do { decoded.append(try pagemap_entry(serializedBytes: bytes, partial: true)) } catch {
                throw InspectError("\(file.path): entry \(i + 1) is not a valid pagemap_entry: \(error)")
            }
        }
        self.init(pagesPath: directory + "/pages-\(head.pagesID).img", entries: decoded)
    }

    public init(pagesPath: String, entries: [pagemap_entry]) {
        self.pagesPath = pagesPath
        var offset: UInt64 = 0
        runs = entries.map { e in
            let pages = e.hasNrPages ? e.nrPages : UInt64(e.compatNrPages)
            // Images without flags mark parent pages with in_parent; everything else is here.
            let flags = e.hasFlags ? e.flags : (e.inParent ? Self.inParent : Self.present)
            guard flags & Self.present != 0 else { return Run(address: e.vaddr, pages: pages, fileOffset: nil) }
            defer { offset += pages * Self.pageSize }
            return Run(address: e.vaddr, pages: pages, fileOffset: offset)
        }
    }

    /// Bytes saved in this checkpoint within [start, end).
    public func dumpedBytes(from start: UInt64, to end: UInt64) -> UInt64 {
        runs.reduce(0) { sum, r in
            guard r.fileOffset != nil else { return sum }
            let lo = max(r.address, start), hi = min(r.end, end)
            return hi > lo ? sum + (hi - lo) : sum
        }
    }

    /// The bytes at [address, address+count), or nil when any of them was not saved here.
    public func read(_ address: UInt64, count: Int) throws -> [UInt8]? {
        guard count > 0 else { return [] }
        let fd = open(pagesPath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw InspectError("open \(pagesPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var at = address
        let end = address + UInt64(count)
        while at < end {
            guard let r = runs.first(where: { $0.address <= at && at < $0.end }), let base = r.fileOffset else { return nil }
            let n = Int(min(end, r.end) - at)
            let chunk = try Self.pread(fd, path: pagesPath, count: n, offset: base + (at - r.address))
            guard chunk.count == n else { return nil }
            out += chunk
            at += UInt64(n)
        }
        return out
    }

    static func pread(_ fd: Int32, path: String, count: Int, offset: UInt64) throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buf.withUnsafeMutableBytes { Glibc.pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw InspectError("read \(path) at \(offset + UInt64(done)): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            done += n
        }
        return Array(buf[0..<done])
    }
}
