import Glibc

/// Scripted faults for crash-consistency tests. With `CRYO_FAULT=POINT:ACTION[,POINT:ACTION…]`
/// in the environment, reaching a named step of run, checkpoint or restore does ACTION:
///   - `kill`: SIGKILL the process that reached it (cryod, or a container's monitor);
///   - `kill-criu`: SIGKILL the CRIU worker busy at that step (points that have one), and go on;
///   - `cut`: the caller breaks its connection there (points checked with `cuts`), and goes on.
///   - `hold`: wait there until the file `$CRYO_FAULT_RELEASE/POINT` exists (at most 5 min), so a
///     test can make another request land in the middle of a step, without sleeping and hoping.
/// Each firing is written to stderr first (`fault point P: A`), so a test can tell that the
/// point was reached. Points are named where they are hit (`FaultPoint.hit("checkpoint-frozen")`);
/// CRIU notifications are points of their own (`checkpoint-notify-post-dump`,
/// `restore-notify-setup-namespaces`, …). Without the variable a hit costs one dictionary
/// lookup. Monitors get the variable from cryod (`childEnvironment`).
public enum FaultPoint {
    public enum Action: String, Sendable { case kill, killCRIU = "kill-criu", stopCRIU = "stop-criu", cut, hold }

    static let plan: [String: Action] = parse(getenv("CRYO_FAULT").map { String(cString: $0) } ?? "")

    /// "a:kill,b:kill-criu" → [a: .kill, b: .killCRIU]; unknown actions are ignored.
    public static func parse(_ text: String) -> [String: Action] {
        var out: [String: Action] = [:]
        for item in text.split(separator: ",") {
            guard let colon = item.lastIndex(of: ":") else { continue }
            let point = String(item[..<colon]).trimmed
            if let action = Action(rawValue: String(item[item.index(after: colon)...]).trimmed), !point.isEmpty {
                out[point] = action
            }
        }
        return out
    }

    /// The environment a child (a monitor) needs for the same plan.
    public static var childEnvironment: [String] {
        guard let v = getenv("CRYO_FAULT") else { return [] }
        return ["CRYO_FAULT=" + String(cString: v)] + (getenv("CRYO_FAULT_RELEASE").map { ["CRYO_FAULT_RELEASE=" + String(cString: $0)] } ?? [])
    }

    /// Does what the plan says for `point`; `criu` is the CRIU worker working at this step.
    public static func hit(_ point: String, criu: pid_t? = nil) {
        guard !plan.isEmpty, let action = plan[point] else { return }
        let line = "fault point \(point): \(action.rawValue) (pid \(getpid()))\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
        switch action {
        case .kill:
            kill(getpid(), SIGKILL)
            pause()
        case .killCRIU:
            if let p = criu, p > 0 { kill(p, SIGKILL) }
        case .stopCRIU:   // a stalled stream: the process stops reading, its socket stays open
            if let p = criu, p > 0 { kill(p, SIGSTOP) }
        case .cut:
            break
        case .hold:
            let release = (getenv("CRYO_FAULT_RELEASE").map { String(cString: $0) } ?? "/nonexistent") + "/" + point
            var waited = 0
            while access(release, F_OK) != 0, waited < 30_000 {
                usleep(10_000)
                waited += 1
            }
        }
    }

    /// Whether the plan cuts the connection at `point` (written to stderr like a hit).
    public static func cuts(_ point: String) -> Bool {
        guard !plan.isEmpty, plan[point] == .cut else { return false }
        let line = "fault point \(point): cut (pid \(getpid()))\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
        return true
    }
}
