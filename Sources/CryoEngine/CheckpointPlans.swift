import CryoRuntime

/// The checkpoint and restore plans cryod makes — the one place where its policy for CRIU
/// is decided (the runtime follows a plan; the monitor carries a restore plan unchanged).
extension Engine {
    /// cryod's network handling: a namespace of the container's own (joined by path) that
    /// cryo locks with its nft table, or nobody when it has only its loopback (network mode
    /// none); with the host's network, nothing of it is dumped or locked.
    nonisolated static func networkHandling(_ c: StoredContainer, criuInside: Bool) -> NetworkHandling {
        guard c.hostConfig.NetworkMode != "host" else { return NetworkHandling(criuInside: false, locker: .nobody) }
        return NetworkHandling(criuInside: criuInside, locker: c.networkIsIsolated ? .nobody : .cryo)
    }

    /// A checkpoint into `imagePath` (its work files beside the images): CRIU dumps from
    /// inside the container's namespace (cryod restores what it dumps), marked complete at
    /// CRIU's post-dump. A pre-dump, or pages sent to a page server by address (reached from
    /// the host's namespace), has CRIU outside the namespace, cryo locking at its notifications.
    nonisolated static func checkpointPlan(_ c: StoredContainer, imagePath: String, tcpEstablished: Bool, leaveRunning: Bool,
                                           preDump: Bool = false, pageServer: PageServer? = nil) -> CheckpointPlan {
        var byAddress = false
        if case .address? = pageServer { byAddress = true }
        var plan = CheckpointPlan(imagePath: imagePath, network: networkHandling(c, criuInside: !preDump && !byAddress))
        plan.workPath = imagePath
        plan.tcpEstablished = tcpEstablished
        plan.leaveRunning = leaveRunning
        plan.preDump = preDump
        plan.pageServer = pageServer
        plan.completionMarker = checkpointCompleteMarker
        return plan
    }

    /// The restore of the checkpoint in `dir`, as its metadata says it was made (for a
    /// checkpoint with the old sidecars, the images tell where CRIU dumped from). The lock
    /// follows the container as it is now: the engine locks its fresh namespace before the
    /// restore when the plan says cryo locks (see `launch`).
    nonisolated static func restorePlan(_ c: StoredContainer, checkpoint dir: String, metadata: CheckpointMetadata, workPath: String,
                                        imagesHoldNetworkNamespace: () -> Bool) -> RestorePlan {
        let inside = metadata.network?.criuInside ?? !imagesHoldNetworkNamespace()
        var plan = RestorePlan(imagePath: dir, network: networkHandling(c, criuInside: inside))
        plan.workPath = workPath
        plan.tcpEstablished = metadata.tcpEstablished
        return plan
    }
}
