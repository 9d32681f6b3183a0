/// The fuzz targets, by name: `cryo-fuzz` (built with `-sanitize=fuzzer` by
/// `scripts/fuzz.sh`) runs one under libFuzzer; the unit tests replay the seed corpus and
/// every input that ever crashed one (`Tests/FuzzCorpus/<target>/`) through the same code.
public enum FuzzTargets {
    public static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "create-request": CreateRequestTarget.run,
        "criu-stats": CRIUStatsTarget.run,
        "http-framing": HTTPFramingTarget.run,
        "image-archive": ImageArchiveTarget.run,
    ]
}
