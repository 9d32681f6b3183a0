import Testing
@testable import CryoLinux

// Kernel ABI values (include/uapi/linux/mount.h), spelled out so the tests do
// not depend on the same Glibc constants the code uses.
private let RDONLY: UInt = 1, NOSUID: UInt = 2, NODEV: UInt = 4, NOEXEC: UInt = 8
private let SYNCHRONOUS: UInt = 16, REMOUNT: UInt = 32, MANDLOCK: UInt = 64, DIRSYNC: UInt = 128
private let NOSYMFOLLOW: UInt = 256
private let NOATIME: UInt = 1024, NODIRATIME: UInt = 2048, BIND: UInt = 4096, REC: UInt = 16384
private let UNBINDABLE: UInt = 1 << 17, PRIVATE: UInt = 1 << 18, SLAVE: UInt = 1 << 19, SHARED: UInt = 1 << 20
private let RELATIME: UInt = 1 << 21, STRICTATIME: UInt = 1 << 24

@Suite struct MountOptionsTests {
    @Test func readOnlyAndReadWrite() {
        let ro = MountOptions(["ro"])
        #expect(ro.flags == RDONLY)
        #expect(ro.isReadOnly)
        #expect(ro.clearedFlags == 0)
        let rw = MountOptions(["rw"])
        #expect(rw.flags == 0)
        #expect(!rw.isReadOnly)
        #expect(rw.clearedFlags == RDONLY)
        #expect(rw.data.isEmpty)
    }

    @Test func laterOptionsOverrideEarlierOnes() {
        let roThenRw = MountOptions(["ro", "nosuid", "rw"])
        #expect(!roThenRw.isReadOnly)
        #expect(roThenRw.flags == NOSUID)
        #expect(roThenRw.clearedFlags == RDONLY)
        let rwThenRo = MountOptions(["rw", "ro"])
        #expect(rwThenRo.isReadOnly)
        #expect(rwThenRo.flags == RDONLY)
        #expect(rwThenRo.clearedFlags == 0)
        let execThenNoexec = MountOptions(["noexec", "exec", "noexec"])
        #expect(execThenNoexec.flags == NOEXEC)
        #expect(execThenNoexec.clearedFlags == 0)
        let atime = MountOptions(["noatime", "atime", "nodiratime", "diratime"])
        #expect(atime.flags == 0)
        #expect(atime.clearedFlags == NOATIME | NODIRATIME)
    }

    @Test func setFlags() {
        let o = MountOptions(["nosuid", "nodev", "noexec", "sync", "dirsync", "mand", "noatime", "nodiratime",
                              "relatime", "strictatime", "remount"])
        #expect(o.flags == NOSUID | NODEV | NOEXEC | SYNCHRONOUS | DIRSYNC | MANDLOCK | NOATIME | NODIRATIME
                | RELATIME | STRICTATIME | REMOUNT)
        #expect(o.data.isEmpty)
        #expect(o.propagation.isEmpty)
        #expect(!o.isBind)
        #expect(!o.isReadOnly)
    }

    @Test func clearFlags() {
        let o = MountOptions(["suid", "dev", "exec", "async", "nomand", "norelatime", "nostrictatime"])
        #expect(o.flags == 0)
        #expect(o.clearedFlags == NOSUID | NODEV | NOEXEC | SYNCHRONOUS | MANDLOCK | RELATIME | STRICTATIME)
    }

    @Test func bindAndRbind() {
        let bind = MountOptions(["bind"])
        #expect(bind.flags == BIND)
        #expect(bind.isBind)
        #expect(!bind.isRecursive)
        let rbind = MountOptions(["rbind", "ro"])
        #expect(rbind.flags == BIND | REC | RDONLY)
        #expect(rbind.isBind && rbind.isRecursive && rbind.isReadOnly)
        #expect(rbind.data.isEmpty)
    }

    @Test func propagationOptionsKeepTheirOrder() {
        let o = MountOptions(["rprivate", "shared", "rslave", "private", "runbindable", "rshared", "slave", "unbindable"])
        #expect(o.propagation == [PRIVATE | REC, SHARED, SLAVE | REC, PRIVATE, UNBINDABLE | REC, SHARED | REC,
                                  SLAVE, UNBINDABLE])
        // Propagation is applied with its own mount(2) calls, never mixed into the flags.
        #expect(o.flags == 0)
        #expect(o.data.isEmpty)
    }

    @Test func dataOptionsGoToTheDataString() {
        // runc's default /dev and /dev/pts mounts.
        let dev = MountOptions(["nosuid", "strictatime", "mode=755", "size=65536k"])
        #expect(dev.flags == NOSUID | STRICTATIME)
        #expect(dev.data == ["mode=755", "size=65536k"])
        #expect(dev.dataString == "mode=755,size=65536k")
        let pts = MountOptions(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"])
        #expect(pts.flags == NOSUID | NOEXEC)
        #expect(pts.dataString == "newinstance,ptmxmode=0666,mode=0620,gid=5")
        #expect(MountOptions([]).dataString == "")
    }

    @Test func ignoredOptionsAreNeitherFlagsNorData() {
        let o = MountOptions(["defaults", "tmpcopyup", "idmap", "ridmap", "copy-symlink", "src-nofollow",
                              "dest-nofollow", "rbind"])
        #expect(o.flags == BIND | REC)
        #expect(o.data.isEmpty)
        #expect(o.propagation.isEmpty)
        #expect(o.clearedFlags == 0)
    }

    @Test func mixedRealWorldOptions() {
        let o = MountOptions(["rbind", "rprivate", "nosuid", "nodev", "ro", "context=\"system_u:object_r:x\""])
        #expect(o.flags == BIND | REC | NOSUID | NODEV | RDONLY)
        #expect(o.propagation == [PRIVATE | REC])
        #expect(o.data == ["context=\"system_u:object_r:x\""])
        #expect(o == MountOptions(["rbind", "rprivate", "nosuid", "nodev", "ro", "context=\"system_u:object_r:x\""]))
        #expect(o != MountOptions(["rbind", "rprivate", "nosuid", "nodev", "rw", "context=\"system_u:object_r:x\""]))
    }

    /// OCI runtime-spec 1.1 lists "nosymfollow" (MS_NOSYMFOLLOW) among the mount
    /// options and runc maps it to a flag. Passed as fs data it is silently
    /// dropped for bind mounts (whose data is never used) and rejected by tmpfs.
    @Test func nosymfollowIsAFlag() {
        let o = MountOptions(["rbind", "nosymfollow"])
        #expect(o.flags == BIND | REC | NOSYMFOLLOW)
        #expect(o.data.isEmpty)
    }
}

@Suite struct MountinfoUnescapeTests {
    @Test func octalEscapes() {
        #expect(Mount.unescape("/mnt/with\\040space") == "/mnt/with space")
        #expect(Mount.unescape("/a\\011tab\\012nl") == "/a\ttab\nnl")
        #expect(Mount.unescape("/back\\134slash") == "/back\\slash")
        #expect(Mount.unescape("\\040lead") == " lead")
        #expect(Mount.unescape("trail\\040") == "trail ")
        #expect(Mount.unescape("\\040\\040") == "  ")
    }

    @Test func plainAndNonEscapesAreKept() {
        #expect(Mount.unescape("/sys/fs/cgroup") == "/sys/fs/cgroup")
        #expect(Mount.unescape("") == "")
        #expect(Mount.unescape("a\\9zz") == "a\\9zz")        // not octal
        #expect(Mount.unescape("a\\04") == "a\\04")          // too short
        #expect(Mount.unescape("a\\") == "a\\")
        #expect(Mount.unescape("a\\400b") == "a\\400b")      // > 0o377 is not a byte
    }

    @Test func multiByteUTF8SurvivesAndEscapedBytesFormUTF8() {
        #expect(Mount.unescape("/données\\040x") == "/données x")
        // Escapes decode to bytes, so escaped UTF-8 sequences come back as the character.
        #expect(Mount.unescape("/caf\\303\\251") == "/café")
    }
}
