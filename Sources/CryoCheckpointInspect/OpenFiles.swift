import CRIUImages

/// One fd of a process (fdinfo_entry) described through the object it refers to in files.img:
/// a regular file's path, flags and position; a pipe's inode; a socket's addresses.
enum OpenFiles {
    static func describe(_ fd: fdinfo_entry, files: [UInt32: file_entry]) -> InspectedFile {
        let type = fd.type.rawValue
        var out = InspectedFile(fd: fd.fd, type: KernelNames.fileType(type), closeOnExec: fd.flags & 1 != 0,
                                flags: nil, path: nil, position: nil, pipe: nil, socket: nil)
        guard let f = files[fd.id] else { return out }
        switch type {
        case 1:
            (out.path, out.flags, out.position) = (f.reg.name, f.reg.flags, f.reg.pos)
        case 2:
            (out.pipe, out.flags) = (f.pipe.pipeID, f.pipe.flags)
        case 3:
            out.pipe = f.fifo.pipeID
            if let reg = files[f.fifo.regfID] { (out.path, out.flags, out.position) = (reg.reg.name, reg.reg.flags, reg.reg.pos) }
        case 4:
            out.flags = f.isk.flags
            out.socket = inet(f.isk)
        case 5:
            out.flags = f.usk.flags
            out.socket = unix(f.usk)
        case 18:
            (out.flags, out.position) = (f.memfd.flags, f.memfd.pos)
        default:
            break
        }
        return out
    }

    static func inet(_ sk: inet_sk_entry) -> InspectedSocket {
        let v6 = sk.family == 10
        func endpoint(_ addr: [UInt32], _ port: UInt32) -> String {
            let a = KernelNames.ipAddress(addr)
            return (v6 ? "[\(a)]" : a) + ":\(port)"
        }
        let connected = sk.state != 10 && sk.state != 7
        return InspectedSocket(family: v6 ? "inet6" : "inet", type: KernelNames.socketType(sk.type), proto: KernelNames.inetProtocol(sk.proto),
                               state: KernelNames.socketState(sk.state), local: endpoint(sk.srcAddr, sk.srcPort),
                               peer: connected || sk.dstPort != 0 ? endpoint(sk.dstAddr, sk.dstPort) : nil, inode: sk.ino, peerInode: nil)
    }

    static func unix(_ sk: unix_sk_entry) -> InspectedSocket {
        InspectedSocket(family: "unix", type: KernelNames.socketType(sk.type), proto: nil, state: KernelNames.socketState(sk.state),
                        local: unixName(Array(sk.name)), peer: nil, inode: sk.ino, peerInode: sk.peer)
    }

    /// A unix socket's bound name: a path, "@name" for the abstract namespace (leading NUL), "" unbound.
    static func unixName(_ bytes: [UInt8]) -> String {
        guard let first = bytes.first else { return "" }
        if first == 0 { return "@" + String(decoding: bytes.dropFirst(), as: UTF8.self) }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}
