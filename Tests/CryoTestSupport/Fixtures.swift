import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Fixtures built once per test process, in /tmp/cryo-test-cache-<pid> (removed at exit; caches
/// of earlier processes that are gone are removed on first use).
public enum Fixtures {
    public static let cacheDir: String = {
        if let names = try? FileManager.default.contentsOfDirectory(atPath: "/tmp") {
            for n in names where n.hasPrefix("cryo-test-cache-") {
                if let pid = Int32(n.dropFirst("cryo-test-cache-".count)), kill(pid, 0) != 0 && errno == ESRCH {
                    try? FileManager.default.removeItem(atPath: "/tmp/" + n)
                }
            }
        }
        let dir = "/tmp/cryo-test-cache-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: "/tmp/cryo-test-cache-\(getpid())") }
        return dir
    }()

    /// A busybox rootfs made by scripts/make-busybox-rootfs.sh; bundles copy it with cp -a.
    public static let busyboxRootfs: Result<String, HarnessError> = {
        let dir = cacheDir + "/rootfs"
        do {
            try Tool.check("/bin/bash", [TestEnvironment.packageRoot + "/scripts/make-busybox-rootfs.sh", dir])
            return .success(dir)
        } catch {
            return .failure(HarnessError("building the busybox rootfs failed: \(error)"))
        }
    }()
}
