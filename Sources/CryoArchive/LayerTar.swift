import CArchive
import CryoImages
import CryoLinux
import FoundationEssentials
import Glibc

/// An image layer made from a container's overlay upper directory (`docker commit`): a plain
/// tar in the OCI layer form — a whiteout (0:0 character device) becomes an empty
/// `.wh.<name>` file, an opaque directory (`trusted.overlay.opaque=y`) gets a
/// `.wh..wh..opq` entry — so any engine that loads the image sees the container's changes.
public enum LayerTar {
    /// Writes the layer for `upper` into the new file `tarPath` (mode 0600), leaving out the
    /// paths in `skip` ("/etc/hosts" and the like: what cryo mounts over, not the container's
    /// changes). Returns the sha256 of the tar: the layer's diff_id.
    public static func write(upper: String, to tarPath: String, skip: Set<String>) throws -> Digest {
        try InnerTar.writeTar(tarPath) { a in try walk(upper, rel: "", a: a, skip: skip) }
        return try Digest.of(file: tarPath)
    }

    static func walk(_ root: String, rel: String, a: OpaquePointer, skip: Set<String>) throws {
        let dir = rel.isEmpty ? root : root + "/" + rel
        if !rel.isEmpty, isOpaque(dir) { try marker(a, name: rel + "/" + WhiteoutAction.opaqueMarker) }
        for name in try FS.listDirectory(dir).sorted() {
            let r = rel.isEmpty ? name : rel + "/" + name
            if skip.contains("/" + r) { continue }
            let full = root + "/" + r
            var st = stat()
            guard lstat(full, &st) == 0 else { throw ArchiveError.own("lstat \(full): \(String(cString: strerror(errno)))") }
            let type = st.st_mode & S_IFMT
            if type == S_IFCHR && st.st_rdev == 0 {
                try marker(a, name: (rel.isEmpty ? "" : rel + "/") + WhiteoutAction.prefix + name)
                continue
            }
            if type == S_IFSOCK { continue }   // a socket is not a file anyone can carry (docker skips them too)
            try InnerTar.writeEntry(a, full: full, name: r, st: st)
            if type == S_IFDIR { try walk(root, rel: r, a: a, skip: skip) }
        }
    }

    /// An empty regular file, root-owned: the OCI form of a whiteout or an opaque directory.
    static func marker(_ a: OpaquePointer, name: String) throws {
        let e = archive_entry_new()!
        defer { archive_entry_free(e) }
        archive_entry_copy_pathname(e, name)
        archive_entry_set_filetype(e, UInt32(Glibc.S_IFREG))
        archive_entry_set_perm(e, 0)
        archive_entry_set_size(e, 0)
        guard archive_write_header(a, e) == ARCHIVE_OK else { throw CheckpointArchiveWriter.error(a, "archiving \(name)") }
    }

    static func isOpaque(_ dir: String) -> Bool {
        var v: [UInt8] = [0, 0]
        let n = lgetxattr(dir, "trusted.overlay.opaque", &v, v.count)
        return n == 1 && v[0] == UInt8(ascii: "y")
    }
}
