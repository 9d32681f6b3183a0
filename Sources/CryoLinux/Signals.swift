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
        if s.hasPrefix("RTMIN+"), let k = Int32(s.dropFirst(6)), rtmin + k <= rtmax { return rtmin + k }
        if s.hasPrefix("RTMAX-"), let k = Int32(s.dropFirst(6)), rtmax - k >= rtmin { return rtmax - k }
        return nil
    }
}
