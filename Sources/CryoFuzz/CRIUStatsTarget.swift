import CryoEngine

/// Fuzz target: arbitrary bytes as CRIU's `stats-dump` image, which cryod decodes itself
/// (magic, length-prefixed protobuf) for every checkpoint report — the first of the CRIU
/// image readers; the audit found a length near 2^64 trapping it.
public enum CRIUStatsTarget {
    public static func run(_ data: [UInt8]) {
        _ = CRIUDumpStats.parse(data)
    }
}
