import Glibc

public enum Signals {
    static let names: [String: Int32] = [
        "HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "ILL": SIGILL, "TRAP": SIGTRAP, "ABRT": SIGABRT,
        "IOT": SIGABRT, "BUS": SIGBUS, "FPE": SIGFPE, "KILL": SIGKILL, "USR1": SIGUSR1, "SEGV": SIGSEGV,
        "USR2": SIGUSR2, "PIPE": SIGPIPE, "ALRM": SIGALRM, "TERM": SIGTERM, "STKFLT": SIGSTKFLT,
        "CHLD": SIGCHLD, "CONT": SIGCONT, "STOP": SIGSTOP, "TSTP": SIGTSTP, "TTIN": SIGTTIN,
        "TTOU": SIGTTOU, "URG": SIGURG, "XCPU": SIGXCPU, "XFSZ": SIGXFSZ, "VTALRM": SIGVTALRM,
        "PROF": SIGPROF, "WINCH": SIGWINCH, "IO": SIGIO, "POLL": SIGIO, "PWR": SIGPWR, "SYS": SIGSYS,
    ]

    /// Parses "9", "KILL", "SIGKILL", "sigkill", "RTMIN+3".
    public static func parse(_ text: String) -> Int32? {
        if let n = Int32(text) { return (1...64).contains(n) ? n : nil }
        var s = text.uppercased()
        if s.hasPrefix("SIG") { s.removeFirst(3) }
        if let n = names[s] { return n }
        let rtmin = Int32(34), rtmax = Int32(64)
        if s == "RTMIN" { return rtmin }
        if s == "RTMAX" { return rtmax }
        // Offsets are plain digits within the real-time range (no sign, no overflow).
        if s.hasPrefix("RTMIN+"), let k = realtimeOffset(s.dropFirst(6)) { return rtmin + k }
        if s.hasPrefix("RTMAX-"), let k = realtimeOffset(s.dropFirst(6)) { return rtmax - k }
        return nil
    }

    static func realtimeOffset(_ s: Substring) -> Int32? {
        guard !s.isEmpty, s.count <= 2, s.allSatisfy({ $0.isASCII && $0.isNumber }), let k = Int32(s), k <= 30 else { return nil }
        return k
    }
}
