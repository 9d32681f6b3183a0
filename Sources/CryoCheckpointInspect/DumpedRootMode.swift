import CRIUImages
import Glibc

/// The mode CRIU recorded for the init process's root directory. CRIU checks it at restore
/// ("File . has bad mode"), and another engine's container may have had a root that is not
/// 0755 (runc keeps the image's, e.g. busybox's 0555): an import sets its new root to match.
public enum DumpedRootMode {
    /// The mode (type bits included), or nil when the images do not say.
    public static func of(_ directory: String) throws -> UInt32? {
        let tree = try ImageFile(path: directory + "/pstree.img", expecting: ImageMagic.pstree).messages(pstree_entry.self)
        guard let initPid = tree.first?.pid else { return nil }
        let fsPath = directory + "/fs-\(initPid).img"
        guard access(fsPath, F_OK) == 0 else { return nil }
        let fs = try ImageFile(path: fsPath, expecting: ImageMagic.fs).only(fs_entry.self)
        let files = try CheckpointInspector.fileTable(directory)
        guard let root = files[fs.rootID], root.hasReg, root.reg.hasMode else { return nil }
        return root.reg.mode
    }
}
