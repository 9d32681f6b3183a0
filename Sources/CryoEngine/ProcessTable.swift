import CryoLinux
import FoundationEssentials

/// `docker top`: the host's `ps` output, cut down to a container's processes. Docker runs
/// `ps` on the host with the client's `ps_args` (default `-ef`) and keeps the rows whose
/// PID column names one of the container's pids; so does cryo.
public struct ProcessTable: Codable, Sendable, Equatable {
    public var Titles: [String]
    public var Processes: [[String]]

    public init(Titles: [String], Processes: [[String]]) {
        self.Titles = Titles
        self.Processes = Processes
    }

    /// Parses `ps` output: the first line is the header; each row has as many fields as the
    /// header, the last one (the command) keeping its spaces. Only rows whose PID is in
    /// `pids` are kept. Fails when the header has no PID column (`ps_args` such as `-o comm`).
    public static func parse(_ output: String, pids: Set<Int32>) throws -> ProcessTable {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: true)
        guard let header = lines.first else {
            throw EngineError.bad("ps printed nothing: no header to read")
        }
        let titles = header.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard let pidColumn = titles.firstIndex(of: "PID") else {
            throw EngineError.bad("couldn't find PID field in ps output (header: \(header.trimmed))")
        }
        var rows: [[String]] = []
        for line in lines.dropFirst() {
            let fields = split(line, into: titles.count)
            guard fields.count > pidColumn, let pid = Int32(fields[pidColumn]) else {
                throw EngineError.bad("unexpected ps output line: \(line)")
            }
            if pids.contains(pid) { rows.append(fields) }
        }
        return ProcessTable(Titles: titles, Processes: rows)
    }

    /// The first n-1 whitespace-separated fields, then the rest of the line as one field.
    static func split(_ line: Substring, into n: Int) -> [String] {
        var fields: [String] = []
        var rest = line.drop { $0 == " " || $0 == "\t" }
        while fields.count < n - 1, !rest.isEmpty {
            let end = rest.firstIndex { $0 == " " || $0 == "\t" } ?? rest.endIndex
            fields.append(String(rest[..<end]))
            rest = rest[end...].drop { $0 == " " || $0 == "\t" }
        }
        if !rest.isEmpty { fields.append(String(rest)) }
        return fields
    }
}
