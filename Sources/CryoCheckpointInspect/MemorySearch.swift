import CRIUImages

/// `--search STRING` / `--search-regex RE` over a checkpoint's dumped memory (checkpointctl's
/// `memparse --search` is the model): for each process, every contiguous stretch of pages saved
/// in this checkpoint is scanned, and each hit is reported with the process, the mapping it is
/// in, its virtual address and a little context. Pages kept in a parent checkpoint or left for
/// lazy restore are not in the images and are not searched.
public enum MemorySearch {
    public enum Pattern: Codable, Sendable, Equatable {
        case literal(String)
        case regex(String)
    }

    /// Stop after this many matches (a search for "a" must not produce gigabytes of output).
    public static let defaultLimit = 1000
    /// The most bytes of context either side.
    public static let maxContext = 256
    /// Stretches are scanned in pieces of this size, overlapping so a match across a piece's end is found.
    static let piece = 16 << 20
    /// A regex gets smaller pieces: the budget is checked between pieces.
    static let regexPiece = 1 << 20
    static let overlap = 4096
    /// The longest regex accepted (a longer one is more likely an attack than a question).
    public static let maxRegexLength = 1024
    /// The most time a search may take. Swift's Regex cannot be interrupted inside one match,
    /// so cryod runs regex searches in a child process (`cryo-monitor memory-search`) that is
    /// killed at this budget; this process checks it between pieces and stops cleanly.
    public static let defaultBudgetSeconds = 10

    /// Why a search was stopped: its time budget ran out.
    public static func stopped(after seconds: Int, _ pattern: Pattern) -> InspectError {
        let what: String
        switch pattern {
        case .literal(let s): what = "searching for \"\(s)\""
        case .regex(let r): what = "the regular expression \(r)"
        }
        return InspectError("search stopped after \(seconds) s: \(what) needs more than the search's time budget; "
                            + "use a simpler pattern (nested repetition such as (a+)+ backtracks without end) or --search")
    }

    /// Checks the pattern before any image is read: empty strings and invalid regexes are refused.
    public static func validate(_ pattern: Pattern) throws {
        switch pattern {
        case .literal(let s):
            guard !s.isEmpty else { throw InspectError("search: an empty string matches everywhere") }
            guard s.utf8.count <= overlap else { throw InspectError("search: at most \(overlap) bytes") }
        case .regex(let r):
            guard !r.isEmpty else { throw InspectError("search-regex: an empty pattern matches everywhere") }
            guard r.utf8.count <= maxRegexLength else {
                throw InspectError("search-regex: the pattern is \(r.utf8.count) bytes, at most \(maxRegexLength) are accepted")
            }
            do { _ = try Regex(r) } catch { throw InspectError("search-regex: \(r) is not a valid regular expression: \(error)") }
        }
    }

    /// - Parameter budgetSeconds: the search throws `stopped(after:)` when a piece ends past it.
    public static func search(directory: String, processes: [InspectedProcess], pattern: Pattern, context: Int = 32,
                              limit: Int = defaultLimit, budgetSeconds: Int = defaultBudgetSeconds) throws -> [MemoryMatch] {
        try validate(pattern)
        let context = min(max(context, 0), maxContext)
        let clock = ContinuousClock(), deadline = clock.now.advanced(by: .seconds(budgetSeconds))
        var piece = piece
        if case .regex = pattern { piece = regexPiece }
        var found: [MemoryMatch] = []
        for p in processes where !p.mappings.isEmpty {
            guard let memory = try? DumpedMemory(directory: directory, pid: p.pid) else { continue }
            for stretch in stretches(memory.runs) {
                var at = stretch.start
                while at < stretch.end {
                    guard clock.now < deadline else { throw stopped(after: budgetSeconds, pattern) }
                    let end = min(stretch.end, at + UInt64(piece))
                    // Read a little past the piece's end, for matches and context across it.
                    let readEnd = min(stretch.end, end + UInt64(overlap))
                    guard let bytes = try memory.read(at, count: Int(readEnd - at)) else { break }
                    for offset in matches(in: bytes, pattern) where at + UInt64(offset.lowerBound) < end {
                        let address = at + UInt64(offset.lowerBound)
                        found.append(match(p, address: address, bytes: bytes, range: offset, context: context))
                        if found.count >= limit { return found }
                    }
                    at = end
                }
            }
        }
        return found
    }

    /// Address-contiguous runs of saved pages, merged.
    static func stretches(_ runs: [DumpedMemory.Run]) -> [(start: UInt64, end: UInt64)] {
        var out: [(start: UInt64, end: UInt64)] = []
        for r in runs where r.fileOffset != nil {
            if let last = out.last, last.end == r.address { out[out.count - 1].end = r.end } else { out.append((r.address, r.end)) }
        }
        return out
    }

    /// Byte ranges of the matches. A regex sees the bytes as text, one character per byte:
    /// printable ASCII as itself, everything else as "." (so offsets stay byte offsets).
    static func matches(in bytes: [UInt8], _ pattern: Pattern) -> [Range<Int>] {
        switch pattern {
        case .literal(let s):
            let needle = Array(s.utf8)
            guard let first = needle.first, bytes.count >= needle.count else { return [] }
            var out: [Range<Int>] = []
            var i = 0
            let last = bytes.count - needle.count
            while i <= last {
                if bytes[i] == first && bytes[i..<i + needle.count].elementsEqual(needle) {
                    out.append(i..<i + needle.count)
                    i += needle.count
                } else {
                    i += 1
                }
            }
            return out
        case .regex(let r):
            guard let regex = try? Regex(r) else { return [] }
            let text = printable(bytes[...])
            let scalars = text.unicodeScalars
            return text.matches(of: regex).compactMap { m in
                guard !m.range.isEmpty else { return nil }
                let lo = scalars.distance(from: scalars.startIndex, to: m.range.lowerBound)
                let hi = scalars.distance(from: scalars.startIndex, to: m.range.upperBound)
                return lo..<hi
            }
        }
    }

    static func printable(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.map { (0x20..<0x7f).contains($0) ? $0 : UInt8(ascii: ".") }, as: UTF8.self)
    }

    static func match(_ p: InspectedProcess, address: UInt64, bytes: [UInt8], range: Range<Int>, context: Int) -> MemoryMatch {
        let mapping = p.mappings.first { $0.start <= address && address < $0.end }
        let lo = max(0, range.lowerBound - context), hi = min(bytes.count, range.upperBound + context)
        return MemoryMatch(
            pid: p.pid, comm: p.comm, address: address, mappingStart: mapping?.start, mappingKind: mapping?.kind, mappingPath: mapping?.path,
            match: printable(bytes[range]), before: printable(bytes[lo..<range.lowerBound]), after: printable(bytes[range.upperBound..<hi]))
    }
}

/// One hit of a memory search. Non-printable bytes are shown as ".".
public struct MemoryMatch: Codable, Sendable, Equatable {
    public var pid: UInt32
    public var comm: String
    public var address: UInt64
    public var mappingStart: UInt64?
    public var mappingKind: String?
    public var mappingPath: String?
    public var match: String
    public var before: String
    public var after: String
}
