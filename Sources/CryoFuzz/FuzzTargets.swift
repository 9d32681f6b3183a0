import Glibc

/// The fuzz targets, by name: `cryo-fuzz` (built with `-sanitize=fuzzer` by
/// `scripts/fuzz.sh`) runs one under libFuzzer; the unit tests replay the seed corpus and
/// every input that ever crashed one (`Tests/FuzzCorpus/<target>/`) through the same code.
public enum FuzzTargets {
    public static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "create-request": CreateRequestTarget.run,
        "criu-stats": CRIUStatsTarget.run,
        "http-framing": HTTPFramingTarget.run,
        "image-archive": ImageArchiveTarget.run,
        "migration-frames": MigrationFramesTarget.run,
    ]
}

/// A fuzz input or corpus file, read whole.
public enum FuzzInput {
    public struct Unreadable: Error { public let path: String }

    public static func read(_ path: String) throws -> [UInt8] {
        guard let f = fopen(path, "rb") else { throw Unreadable(path: path) }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            bytes += buf[0..<n]
        }
        return bytes
    }
}
