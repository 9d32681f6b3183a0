/// `--restart` of run, create and update: docker's `NAME[:MAX-RETRIES]`, sent as
/// HostConfig.RestartPolicy. The name is checked by cryod (dockerd's messages); here only
/// the shape, as the docker CLI does.
public struct RestartPolicyBody: Codable, Sendable, Equatable {
    public var Name: String
    public var MaximumRetryCount: Int
    public init(Name: String = "no", MaximumRetryCount: Int = 0) {
        self.Name = Name
        self.MaximumRetryCount = MaximumRetryCount
    }

    public static func parse(_ flag: String) throws -> RestartPolicyBody {
        guard let colon = flag.firstIndex(of: ":") else { return RestartPolicyBody(Name: flag) }
        let name = String(flag[..<colon]), count = String(flag[flag.index(after: colon)...])
        if name.isEmpty { throw ClientError.usage("invalid restart policy format: no policy provided before colon") }
        if count.isEmpty { return RestartPolicyBody(Name: name) }
        guard let n = Int(count) else {
            throw ClientError.usage("invalid restart policy format: maximum retry count must be an integer")
        }
        return RestartPolicyBody(Name: name, MaximumRetryCount: n)
    }
}
