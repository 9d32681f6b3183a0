import CryoLinux
import Glibc

/// The size of every CRIU image of a checkpoint, recorded at CRIU's `post-dump` (all images
/// written, tasks still frozen) and checked before a restore. CRIU 4.2.1's restorer, given a
/// truncated `pages-*.img`, loops for ever on `preadv` returning 0 (the restore never ends,
/// its log grows without bound): a truncated or missing image must be refused before CRIU
/// sees it. Sizes only — hashing a 1 GiB checkpoint would cost a second on every dump; other
/// damage makes CRIU fail by itself (a protobuf it cannot parse) or restores wrong memory,
/// which no size can tell.
public enum CheckpointImageSizes {
    public static let file = "cryo-image-sizes"

    /// Writes `<size> <name>` for every `*.img` in `imageDir`.
    public static func record(imageDir: String) throws {
        var lines = ""
        for name in try FS.listDirectory(imageDir).sorted() where name.hasSuffix(".img") {
            var st = stat()
            guard lstat(imageDir + "/" + name, &st) == 0 else { throw SyscallError("stat", imageDir + "/" + name) }
            lines += "\(st.st_size) \(name)\n"
        }
        try FS.atomicWrite(imageDir + "/" + file, Array(lines.utf8), mode: 0o600, durable: false)
    }

    /// Throws, naming the image, when a recorded image is missing, not a regular file or of
    /// another size. A checkpoint without the record (older, or made by runc) is not checked.
    public static func verify(imageDir: String) throws {
        guard let text = try? FS.readString(imageDir + "/" + file) else { return }
        var problems: [String] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let want = Int64(parts[0]) else {
                throw CryoFailure(.internal, "checkpoint images in \(imageDir) are damaged: \(file) has an unreadable line \"\(line)\"")
            }
            let name = String(parts[1])
            guard !name.contains("/") else {
                throw CryoFailure(.internal, "checkpoint images in \(imageDir) are damaged: \(file) names \"\(name)\"")
            }
            var st = stat()
            if lstat(imageDir + "/" + name, &st) != 0 {
                problems.append("\(name) is missing")
            } else if st.st_mode & S_IFMT != S_IFREG {
                problems.append("\(name) is not a regular file")
            } else if Int64(st.st_size) != want {
                problems.append("\(name) has \(st.st_size) bytes, \(want) were written")
            }
        }
        if !problems.isEmpty {
            throw CryoFailure(.internal, "checkpoint images in \(imageDir) are damaged (\(problems.joined(separator: "; "))): nothing was restored, the checkpoint is left as it is")
        }
    }
}
