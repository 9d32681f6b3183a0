import CryoArchive
import CryoImages
import CryoLinux
import FoundationEssentials
import Glibc

extension Engine {
    static let exportedRootfsFile = "rootfs.tar"

    /// `docker export`: the container's filesystem (its overlay root: the image's layers and
    /// its changes, as the container sees its root) as a plain tar in a scratch file, which
    /// `discardExport` removes. What is mounted inside the container (volumes, binds, /proc)
    /// is not in it, as with Docker. A container never started gets its root mounted for this
    /// (and keeps it mounted, as after a start). Under the container lock: no start or removal
    /// mounts or unmounts its root meanwhile.
    public func exportContainer(_ ref: String) async throws -> String {
        let id = try resolve(ref).id
        return try await withLock(id) {
            let c = try resolve(id)
            let store = images, p = paths
            let scratch = try await archiveScratch("exports")
            do {
                return try await blocking { () throws -> String in
                    if !FS.isMountPoint(p.rootfs(id)) {
                        let lowers: [String]
                        do { lowers = store.lowerDirs(for: try store.inspect(c.imageID)) } catch { throw EngineError.noSuchImage(c.imageRef) }
                        try RootfsMount.ensure(lowerDirs: lowers, upper: p.upper(id), work: p.work(id), target: p.rootfs(id))
                    }
                    let out = scratch + "/" + Self.exportedRootfsFile
                    _ = try LayerTar.write(upper: p.rootfs(id), to: out, skip: [])
                    return out
                }
            } catch {
                await removeOffActor(scratch)
                throw CryoFailure("exporting the filesystem of \(c.name)", cause: error)
            }
        }
    }
}
