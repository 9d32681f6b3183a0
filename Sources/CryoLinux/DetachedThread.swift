import Glibc

/// A detached pthread running a closure: work that must not hold up its caller (copying
/// stdin must not block process exit; closing a netlink socket may wait for the kernel).
public final class DetachedThread: Sendable {
    let body: @Sendable () -> Void
    public init(_ body: @escaping @Sendable () -> Void) { self.body = body }

    /// Starts the thread; if no thread can be made, runs the body here.
    public func start() {
        let box = Unmanaged.passRetained(self)
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            let t = Unmanaged<DetachedThread>.fromOpaque(arg!).takeRetainedValue()
            t.body()
            return nil
        }, box.toOpaque())
        if rc == 0 { pthread_detach(tid) } else { box.release(); body() }
    }
}
