import CryoLinux

/// What kind of failure each refusal is: conflicts, bad input, unknown names, and the
/// plugins' failures (cryod's own).
extension NetworkError: CodedError {
    public var code: CryoFailure.Code {
        switch self {
        case .notFound: return .notFound
        case .nameInUse, .subnetOverlap, .bridgeInUse, .predefined, .activeEndpoints, .ipInUse, .portInUse, .ambiguous, .noFreeSubnet,
             .parentInUse:
            return .conflict
        case .invalidName, .invalidSubnet, .invalidGateway, .invalidBridge, .invalidIP, .ipOutsideSubnet, .ipNotAssignable, .invalidPort,
             .invalidOption, .invalidParent, .invalidIPRange:
            return .invalidArgument
        case .plugin, .pluginOutput, .pluginMissing, .corruptState:
            return .internal
        }
    }
}
