import CryoImages
import CryoLinux
import Glibc

/// A container's root: an overlay of its image's layers (read-only) and its own upper
/// dir. Mounted at first start, left mounted while the container exists (unmounting
/// would flush the whole filesystem, checkpoint images included), remounted after a
/// reboot, unmounted at removal.
enum RootfsMount {
    static func ensure(lowerDirs: [String], upper: String, work: String, target: String) throws {
        if FS.isMountPoint(target) { return }
        try FS.mkdirAll(upper, mode: 0o755)
        try FS.mkdirAll(work, mode: 0o700)
        try FS.mkdirAll(target, mode: 0o755)
        try OverlayRootfs.mount(lowerDirs: lowerDirs, upper: upper, work: work, target: target)
    }

    static func release(_ target: String) {
        guard FS.isMountPoint(target) else { return }
        try? OverlayRootfs.unmount(target: target)
    }
}
