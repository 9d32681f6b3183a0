/// Names for the kernel's and CRIU's numbers as they appear in the images.
enum KernelNames {
    /// CRIU's fd_types (images/fdinfo.proto).
    static func fileType(_ raw: Int) -> String {
        switch raw {
        case 1: "file"
        case 2: "pipe"
        case 3: "fifo"
        case 4, 5, 10, 13: "socket"
        case 6: "eventfd"
        case 7: "eventpoll"
        case 8: "inotify"
        case 9: "signalfd"
        case 11, 65534: "tty"
        case 12: "fanotify"
        case 14: "namespace"
        case 15: "tun"
        case 16: "external"
        case 17: "timerfd"
        case 18: "memfd"
        case 19: "bpf-map"
        case 20: "pidfd"
        case 65535: "autofs-pipe"
        default: "unknown(\(raw))"
        }
    }

    /// CRIU's task_state (criu/include/task-entries.h / compel).
    static func taskState(_ raw: UInt32) -> String {
        switch raw {
        case 1: "alive"
        case 2: "dead"
        case 3: "stopped"
        case 4: "helper"
        case 6: "zombie"
        default: "unknown(\(raw))"
        }
    }

    static func socketType(_ raw: UInt32) -> String {
        switch raw {
        case 1: "stream"
        case 2: "dgram"
        case 3: "raw"
        case 5: "seqpacket"
        default: "type(\(raw))"
        }
    }

    static func inetProtocol(_ raw: UInt32) -> String {
        switch raw {
        case 6: "tcp"
        case 17: "udp"
        case 136: "udplite"
        case 1: "icmp"
        case 58: "icmpv6"
        default: "proto(\(raw))"
        }
    }

    /// The kernel's TCP states (include/net/tcp_states.h); CRIU also stores unix sockets' states so.
    static func socketState(_ raw: UInt32) -> String {
        switch raw {
        case 1: "established"
        case 2: "syn-sent"
        case 3: "syn-recv"
        case 4: "fin-wait1"
        case 5: "fin-wait2"
        case 6: "time-wait"
        case 7: "close"
        case 8: "close-wait"
        case 9: "last-ack"
        case 10: "listen"
        case 11: "closing"
        default: "state(\(raw))"
        }
    }

    /// An IPv4 or IPv6 address as CRIU stores it: 32-bit words holding the address bytes in
    /// network order, read as little-endian integers.
    static func ipAddress(_ words: [UInt32]) -> String {
        let bytes = words.flatMap { w in [UInt8(w & 0xff), UInt8(w >> 8 & 0xff), UInt8(w >> 16 & 0xff), UInt8(w >> 24)] }
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        guard bytes.count == 16 else { return "" }
        // An IPv4-mapped address is written the way the kernel prints it: ::ffff:a.b.c.d.
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
            return "::ffff:" + bytes[12...].map(String.init).joined(separator: ".")
        }
        let groups = stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
        return compressIPv6(groups)
    }

    /// RFC 5952: lower-case hex, the longest run (≥ 2) of zero groups as "::".
    static func compressIPv6(_ groups: [UInt16]) -> String {
        var best = (start: -1, length: 0), i = 0
        while i < groups.count {
            if groups[i] == 0 {
                var j = i
                while j < groups.count && groups[j] == 0 { j += 1 }
                if j - i > best.length { best = (i, j - i) }
                i = j
            } else {
                i += 1
            }
        }
        let hex = groups.map { String($0, radix: 16) }
        guard best.length >= 2 else { return hex.joined(separator: ":") }
        return hex[..<best.start].joined(separator: ":") + "::" + hex[(best.start + best.length)...].joined(separator: ":")
    }

    // vma_entry.status bits (criu/include/image.h). CRIU does not mark the main stack (bit 1
    // stays clear in its dumps), so it is named as the kernel names [stack]: the anonymous
    // mapping that holds mm's start_stack.
    static func mappingKind(status: UInt32, holdsStackStart: Bool = false) -> String {
        if status & 1 << 1 != 0 { return "stack" }
        if status & 1 << 5 != 0 { return "heap" }
        if status & 1 << 3 != 0 { return "vdso" }
        if status & 1 << 12 != 0 { return "vvar" }
        if status & 1 << 2 != 0 { return "vsyscall" }
        if status & 1 << 14 != 0 { return "memfd" }
        if status & 1 << 10 != 0 { return "sysvipc" }
        if status & 1 << 11 != 0 { return "socket" }
        if status & 1 << 13 != 0 { return "aio" }
        if status & (1 << 6 | 1 << 7) != 0 { return "file" }
        if status & 1 << 8 != 0 { return "anon-shared" }
        return holdsStackStart ? "stack" : "anon"
    }

    static func isFileMapping(status: UInt32) -> Bool { status & (1 << 6 | 1 << 7) != 0 }

    /// "r-xp": PROT_READ/WRITE/EXEC and MAP_SHARED (flags bit 0x01) or private.
    static func protection(prot: UInt32, flags: UInt32) -> String {
        (prot & 1 != 0 ? "r" : "-") + (prot & 2 != 0 ? "w" : "-") + (prot & 4 != 0 ? "x" : "-") + (flags & 1 != 0 ? "s" : "p")
    }
}
