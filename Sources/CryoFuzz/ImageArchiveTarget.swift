import CryoImages
import CryoLinux
import Glibc

/// Fuzz target: arbitrary bytes as an image archive given to `docker load` and `docker
/// import` (ImageStore.load / importRootfs: libarchive with cryo's extraction checks, then
/// ArchiveLayout's manifest.json / index.json / blob verification). The store lives in
/// /dev/shm and is emptied after each input; whatever the bytes, the answer is an image or
/// an error, never a crash, and nothing is written outside the store.
public enum ImageArchiveTarget {
    private static let base = "/dev/shm/cryo-fuzz-images-\(getpid())"

    public static func run(_ data: [UInt8]) {
        let store = base + "/store"
        let archive = base + "/input.tar"
        try? FS.removeAll(base)
        defer { try? FS.removeAll(base) }
        do {
            try FS.mkdirAll(base, mode: 0o700)
            try FS.atomicWrite(archive, data, mode: 0o600, durable: false)
            // A bounded budget: a decompression bomb is refused, not unpacked into /dev/shm.
            let images = try ImageStore(root: store, maxExtractedBytes: 64 << 20)
            _ = try? images.load(archive: archive)
            _ = try? images.importRootfs(archive: archive, reference: "fuzz:import")
            _ = try? images.list()
        } catch {
            // The store itself could not be set up: not the input's doing.
        }
    }
}
