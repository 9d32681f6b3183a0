import Glibc
import CShim

/// Catches disk I/O on the engine actor's thread (issue 14: the actor only orders the work;
/// files, directories, mounts and the syscalls around them run on the blocking pool or the
/// record writer, so one slow disk never stalls every request).
///
/// The engine actor runs on its own executor, which marks the thread while it runs an actor
/// job (`enter`/`leave`, a pthread key: the mark belongs to the thread for the length of one
/// job, not to a task, so a task that hops off the actor is unmarked there). The FS and Mount
/// helpers call `check` first. In a debug build started with `CRYO_ASSERT_OFF_ACTOR=1` (the
/// engine tests set it), a helper called on a marked thread crashes the process, naming the
/// call and the path; otherwise `check` does nothing (release builds compile it away).
public enum OffActorCheck {
    #if DEBUG
    /// Read once: a daemon either checks for its whole life or never. "1" crashes on a
    /// violation; "log" only writes it (with the stack) to stderr, so one run of a test suite
    /// lists every place at once.
    public static let mode: String = getenv("CRYO_ASSERT_OFF_ACTOR").map { String(cString: $0) } ?? ""
    public static let enabled: Bool = mode == "1" || mode == "log"
    #else
    public static let mode = ""
    public static let enabled = false
    #endif

    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        precondition(pthread_key_create(&k, nil) == 0, "pthread_key_create for the off-actor check")
        return k
    }()

    /// The calling thread starts running an engine actor job (debug builds: the mark costs a
    /// pthread_setspecific per job; release builds keep no mark).
    @inline(__always)
    public static func enter() {
        #if DEBUG
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: 1))
        #endif
    }

    /// The calling thread is done with that job.
    @inline(__always)
    public static func leave() {
        #if DEBUG
        pthread_setspecific(key, nil)
        #endif
    }

    /// Whether the calling thread is running an engine actor job (debug builds; false in
    /// release builds). Marked whether or not the check is on, so tests can see the mark.
    public static var isMarked: Bool {
        #if DEBUG
        return pthread_getspecific(key) != nil
        #else
        return false
        #endif
    }

    /// Crashes when disk I/O (`call` on `path`) is about to run on the engine actor.
    @inline(__always)
    public static func check(_ call: StaticString, _ path: @autoclosure () -> String) {
        guard enabled, isMarked else { return }
        let p = path()
        // procfs answers from kernel memory and never waits on a disk (a process's stat).
        if p.hasPrefix("/proc/") { return }
        violation(call, p)
    }

    private static func violation(_ call: StaticString, _ path: String) {
        let line = "cryo: disk I/O on the engine actor: \(call) \(path) (CRYO_ASSERT_OFF_ACTOR=\(mode); run it on the blocking pool)\n"
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
        if mode == "log" {
            var frames = [UnsafeMutableRawPointer?](repeating: nil, count: 24)
            let n = backtrace(&frames, Int32(frames.count))
            backtrace_symbols_fd(&frames, n, 2)
            return
        }
        fatalError("disk I/O on the engine actor: \(call) \(path)")
    }
}
