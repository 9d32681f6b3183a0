import CShim
import Glibc

/// Announces a container's address on its segment after a restore (or a migration): a few
/// gratuitous ARP requests (sender = target = the address, from the interface's MAC, to the
/// broadcast address), sent from inside the container's network namespace on a packet socket.
///
/// Why cryo sends them itself: the CNI plugins set `arp_notify`, so the kernel announces when a
/// link comes up — but at a restore the link comes up at the attach, before the restored
/// tasks run and while the namespace is still locked (NetworkLock), and after a migration the
/// segment's switches and neighbours must learn the interface's new place. CRIU sends none.
/// Neighbours that already have an entry for the address update it (RFC 5227's
/// announcement form; Linux's arp_notify sends the same packet).
public enum GratuitousARP {
    /// The ARP packet (Ethernet/IPv4, request): 28 bytes.
    public static func packet(ip: [UInt8], mac: [UInt8]) -> [UInt8] {
        var p: [UInt8] = [0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]   // htype 1, ptype IPv4, hlen 6, plen 4, op request
        p += mac + ip                                                  // sender
        p += [UInt8](repeating: 0, count: 6) + ip                      // target: no hardware address, same IP
        return p
    }

    /// Sends `count` announcements `intervalMs` apart on `interface` in the namespace at
    /// `netnsPath`. Switches the calling thread into the namespace and back (see
    /// NetworkNamespace.withThread): call it on a thread of its own, never from async code.
    /// The socket is made while the thread is inside, so it belongs to that namespace.
    public static func announce(netnsPath: String, interface: String, ip: [UInt8], mac: [UInt8],
                                count: Int = 3, intervalMs: Int = 100) throws {
        guard ip.count == 4, mac.count == 6 else {
            throw CryoFailure(.invalidArgument, "gratuitous ARP on \(interface) in \(netnsPath): want a 4-byte address and a 6-byte MAC")
        }
        try NetworkNamespace.withThread(in: netnsPath) {
            let what = "\(interface) in \(netnsPath)"
            let ifindex = if_nametoindex(interface)
            if ifindex == 0 { throw SyscallError("if_nametoindex", what) }
            let proto = UInt16(0x0806).bigEndian   // ETH_P_ARP
            let fd = try sys(socket(AF_PACKET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(proto)),
                             "socket(AF_PACKET)", what)
            defer { close(fd) }
            var to = sockaddr_ll()
            to.sll_family = UInt16(AF_PACKET)
            to.sll_protocol = proto
            to.sll_ifindex = Int32(ifindex)
            to.sll_halen = 6
            withUnsafeMutableBytes(of: &to.sll_addr) { b in for i in 0..<6 { b[i] = 0xff } }
            let arp = packet(ip: ip, mac: mac)
            for i in 0..<max(count, 1) {
                if i > 0 { usleep(UInt32(intervalMs) * 1000) }
                let sent = arp.withUnsafeBytes { b in
                    withUnsafePointer(to: &to) { a in
                        a.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_ll>.size))
                        }
                    }
                }
                if sent < 0 { throw SyscallError("sendto(gratuitous ARP)", what) }
            }
        }
    }
}
