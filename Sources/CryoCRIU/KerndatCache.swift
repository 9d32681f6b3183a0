import CryoLinux
import Glibc

/// CRIU probes the kernel at the start of every request (kerndat: pagemap, a veth pair
/// for link-nsid support, the vDSO, sockets…, ~60–90 ms here) unless it finds its cache,
/// /run/criu.kdat. It only *saves* that cache when /run is a tmpfs, so that a reboot
/// clears it. On a host whose /run is a plain directory (this VM) no CRIU ever saves
/// it, and CRIU 4.2.1 then also leaves /run/criu.kdat.tmp behind (it unlinks the cache
/// name instead of the temp file). Loading checks no file system, so we let CRIU write
/// the cache in a private mount namespace with a tmpfs on /run and copy it out; a cache
/// older than the current boot is replaced, which keeps CRIU's "gone after reboot" rule.
public enum KerndatCache {
    public static let cachePath = "/run/criu.kdat"
    static let tmpfsMagic: Int = 0x0102_1994

    /// Makes sure a current cache exists. Best effort: without it CRIU only runs slower.
    @discardableResult
    public static func ensure(criuPath: String, cache: String = cachePath) -> Bool {
        guard let fsType = FS.fileSystemType(FS.parent(cache)), fsType != tmpfsMagic else { return true }   // CRIU keeps its own cache there
        var st = stat()
        if stat(cache, &st) == 0 && st.st_size > 0 && Double(st.st_mtim.tv_sec) >= bootRealtime() { return true }
        let script = "mount -t tmpfs -o size=4m,mode=755 cryo-kdat /run && \"$0\" check >/dev/null 2>&1; cat /run/criu.kdat"
        guard let r = try? Spawn.run(path: "/usr/bin/unshare", args: ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, criuPath],
                                     env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], timeoutMs: 10_000),
              r.status == 0, !r.stdout.isEmpty else {
            Trace.mark("criu kdat cache: could not generate it")
            return false
        }
        do { try FS.atomicWrite(cache, r.stdout, mode: 0o600, durable: false) } catch { return false }
        Trace.mark("criu kdat cache: generated \(cache)")
        return true
    }

    /// Wall-clock time of this boot, in seconds.
    static func bootRealtime() -> Double {
        var now = timespec(), up = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        clock_gettime(CLOCK_BOOTTIME, &up)
        return Double(now.tv_sec - up.tv_sec) - 1
    }
}
