/// Checkpoint options a container carries in its labels (`docker run --label`), for clients
/// that cannot send cryo's own checkpoint flags: the docker CLI has no `--tcp-established`,
/// so `--label io.cryo.checkpoint.tcp-established=true` makes every checkpoint of that
/// container include its established TCP connections.
public enum CheckpointLabels {
    public static let tcpEstablished = "io.cryo.checkpoint.tcp-established"

    /// Whether a checkpoint includes established TCP connections: asked for by the request
    /// (`?tcp-established=1`) or by the container's label.
    public static func includesTCP(requested: Bool, labels: [String: String]?) -> Bool {
        if requested { return true }
        guard let v = labels?[tcpEstablished] else { return false }
        return (try? parse(v)) ?? false
    }

    /// Refuses a label value that is not a boolean at create, so a typo does not silently
    /// turn the option off (the checkpoint would then fail on the first connection).
    public static func validate(_ labels: [String: String]?) throws {
        guard let v = labels?[tcpEstablished] else { return }
        _ = try parse(v)
    }

    static func parse(_ value: String) throws -> Bool {
        switch value.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off", "": return false
        default:
            throw EngineError.bad("label \(tcpEstablished)=\(value): expected true or false")
        }
    }
}
