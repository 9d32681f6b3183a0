import CShim
import Glibc

/// A container's own session keyring. Without one, every container process shares the
/// session keyring of whoever started it (the host's), so a key added in one container
/// is readable in the next and on the host. The container's init joins a keyring named
/// after the container (a new one), an exec joins the same one by name, and a restore's
/// CRIU worker joins it too (CRIU does not dump keyrings; restored tasks inherit CRIU's).
public enum SessionKeyring {
    /// Possessor: all; owner (root, who makes it): view, read, write, search, so a root
    /// process (an exec) can find and join it by name. The same bits runc ends up with.
    public static let permissions: UInt32 = 0x3f0f_0000

    public static func name(container id: String) -> String { "cryo-session." + id }

    /// Joins (or makes) the named session keyring for the calling process. A kernel without
    /// keyrings (ENOSYS) has none to share: nothing to do.
    public static func join(_ name: String) throws {
        if cryo_join_session_keyring(name, permissions) < 0 && errno != ENOSYS {
            throw SyscallError("keyctl(KEYCTL_JOIN_SESSION_KEYRING)", name)
        }
    }
}
