import CShim
import CryoLinux
import CryoOCI
import Glibc

/// A pseudo-terminal made inside the container (its own devpts), whose master
/// is handed to the caller's console socket, like runc's --console-socket.
enum Console {
    /// Opens /dev/ptmx of the current mount namespace; returns (master, slave path).
    static func openPTY() throws -> (master: Int32, slavePath: String) {
        let master = try sys(open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC), "open", "/dev/ptmx")
        var unlock: Int32 = 0
        try sys(cryo_ioctl_int(master, cryo_TIOCSPTLCK(), &unlock), "ioctl(TIOCSPTLCK)", "/dev/ptmx")
        var n: Int32 = 0
        try sys(cryo_ioctl_int(master, cryo_TIOCGPTN(), &n), "ioctl(TIOCGPTN)", "/dev/ptmx")
        return (master, "/dev/pts/\(n)")
    }

    /// Makes the slave our stdio and controlling terminal, and sends the master away.
    static func setUp(consoleSocket: Int32, bindConsole: Bool, size: Spec.Box? = nil) throws {
        let (master, slavePath) = try openPTY()
        // process.consoleSize: the terminal starts with the caller's size (runc does the same).
        if let s = size, s.height > 0, s.width > 0 {
            _ = cryo_set_winsize(master, UInt16(clamping: s.height), UInt16(clamping: s.width))
        }
        let slave = try sys(open(slavePath, O_RDWR | O_NOCTTY), "open", slavePath)
        if bindConsole {
            try FS.touch("/dev/console")
            try Mount.mount(slavePath, "/dev/console", type: nil, flags: UInt(MS_BIND))
        }
        // runc's console protocol: the master fd with the pty name as payload.
        let r = Array("/dev/ptmx".utf8).withUnsafeBytes { p in cryo_send_fd(consoleSocket, master, p.baseAddress, p.count) }
        if r < 0 { throw SyscallError("sendmsg(console master)", "console socket") }
        close(master)
        close(consoleSocket)
        for fd: Int32 in 0...2 { try sys(dup2(slave, fd), "dup2", slavePath) }
        if slave > 2 { close(slave) }
        try sys(cryo_ioctl_noarg(0, cryo_TIOCSCTTY(), 0), "ioctl(TIOCSCTTY)", slavePath)
    }
}
