/// The human form of a `CheckpointInspection` (`cryo checkpoint inspect` without `--format json`):
/// one section per subject, each process with its command line, files and mappings.
public enum InspectionText {
    public static func render(_ i: CheckpointInspection) -> String {
        if let matches = i.matches { return renderMatches(matches, truncated: i.matchesTruncated == true) }
        var o = ""
        o += "PROCESSES\n"
        o += table([["PID", "PPID", "UID", "STATE", "CWD", "COMMAND"]] + i.processes.map { p in
            [String(p.pid), String(p.ppid), p.uid.map(String.init) ?? "-", p.state, p.cwd ?? "-", commandLine(p)]
        })
        for p in i.processes {
            o += "\nPROCESS \(p.pid) (\(p.comm))"
            if p.threads.count > 1 { o += ", threads \(p.threads.map(String.init).joined(separator: " "))" }
            o += "\n"
            if let env = p.environment {
                o += "  environment:\n" + env.map { "    \($0)\n" }.joined()
            }
            if !p.files.isEmpty {
                o += "  open files:\n"
                o += indent(table([["FD", "TYPE", "FLAGS", "POS", "WHAT"]] + p.files.map { f in
                    [String(f.fd) + (f.closeOnExec ? "e" : ""), f.type, f.flags.map(openFlags) ?? "-", f.position.map(String.init) ?? "-", what(f)]
                }))
            }
            if !p.mappings.isEmpty {
                o += "  memory mappings:\n"
                o += indent(table([["START", "END", "PERM", "SIZE", "DUMPED", "KIND", "PATH"]] + p.mappings.map { m in
                    [hex(m.start), hex(m.end), m.protection, bytes(m.size), bytes(m.dumped), m.kind, m.path ?? ""]
                }))
                let total = p.mappings.reduce(UInt64(0)) { $0 + $1.size }, dumped = p.mappings.reduce(UInt64(0)) { $0 + $1.dumped }
                o += "  \(p.mappings.count) mappings, \(bytes(total)) mapped, \(bytes(dumped)) dumped\n"
            }
        }
        if !i.mounts.isEmpty {
            o += "\nMOUNTS\n"
            o += table([["ID", "PARENT", "MOUNTPOINT", "TYPE", "SOURCE", "ROOT", "OPTIONS"]] + i.mounts.map { m in
                [String(m.id), String(m.parent), m.mountpoint, m.fstype, m.source, m.root + (m.external.map { " (external \($0))" } ?? ""),
                 m.options.isEmpty ? "-" : m.options]
            })
        }
        if !i.namespaces.isEmpty {
            o += "\nNAMESPACES\n"
            o += table([["KIND", "ID", "PIDS", "IMAGE", "HOSTNAME"]] + i.namespaces.map { n in
                [n.kind, String(n.id), n.pids.map(String.init).joined(separator: ","), n.image ?? "-", n.hostname ?? ""]
            })
        }
        if let s = i.statistics {
            o += "\nCRIU DUMP STATISTICS\n"
            o += "  freezing time   \(s.freezingTime) µs\n  frozen time     \(s.frozenTime) µs\n"
            o += "  memory dump     \(s.memdumpTime) µs\n  memory write    \(s.memwriteTime) µs\n"
            o += "  pages scanned   \(s.pagesScanned)\n  pages written   \(s.pagesWritten)\n"
            o += "  pages in parent \(s.pagesSkippedParent)\n  pages lazy      \(s.pagesLazy)\n"
        }
        if !i.environmentShown { o += "\n(environment variables not shown; --env shows them)\n" }
        return o
    }

    /// A search's hits, one per line: pid, comm, address, the mapping, and the match in its context.
    public static func renderMatches(_ matches: [MemoryMatch], truncated: Bool) -> String {
        var o = table([["PID", "COMMAND", "ADDRESS", "MAPPING", "CONTEXT"]] + matches.map { m in
            let mapping = m.mappingStart.map { hex($0) + " " + (m.mappingPath ?? m.mappingKind ?? "") } ?? "-"
            return [String(m.pid), m.comm, hex(m.address), mapping, m.before + "[" + m.match + "]" + m.after]
        })
        o += "\(matches.count) match\(matches.count == 1 ? "" : "es")" + (truncated ? " (stopped at the limit)" : "") + "\n"
        return o
    }

    static func commandLine(_ p: InspectedProcess) -> String {
        guard let args = p.arguments, !args.isEmpty else { return "[\(p.comm)]" }
        return args.map { $0.contains(" ") || $0.isEmpty ? "'\($0)'" : $0 }.joined(separator: " ")
    }

    static func what(_ f: InspectedFile) -> String {
        if let s = f.socket {
            var w = "\(s.family) \(s.type)" + (s.proto.map { "/\($0)" } ?? "") + " \(s.state) \(s.local.isEmpty ? "-" : s.local)"
            if let peer = s.peer { w += " -> \(peer)" }
            if let peer = s.peerInode, peer != 0 { w += " -> socket:[\(peer)]" }
            return w + " (inode \(s.inode))"
        }
        if let pipe = f.pipe { return (f.path.map { $0 + " " } ?? "") + "pipe:[\(pipe)]" }
        return f.path ?? ""
    }

    /// O_ACCMODE as r/w/rw, then the flags that matter for forensics.
    static func openFlags(_ flags: UInt32) -> String {
        var parts = [["r", "w", "rw", "?"][Int(flags & 3)]]
        let named: [(UInt32, String)] = [(0o2000, "append"), (0o4000, "nonblock"), (0o40000, "direct"), (0o4010000, "sync"), (0o100000, "largefile")]
        for (bit, name) in named where flags & bit == bit { parts.append(name) }
        return parts.joined(separator: ",")
    }

    static func hex(_ v: UInt64) -> String { String(v, radix: 16) }

    static func bytes(_ n: UInt64) -> String {
        if n < 1024 { return "\(n)B" }
        let units = ["KiB", "MiB", "GiB", "TiB"]
        var v = Double(n) / 1024, u = 0
        while v >= 1024 && u < units.count - 1 { (v, u) = (v / 1024, u + 1) }
        let tenths = Int((v * 10).rounded())
        return tenths % 10 == 0 ? "\(tenths / 10)\(units[u])" : "\(tenths / 10).\(tenths % 10)\(units[u])"
    }

    static func table(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = first.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        return rows.map { r in
            r.enumerated().map { i, c in i == r.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count + 2) }.joined()
        }.joined(separator: "\n") + "\n"
    }

    static func indent(_ s: String) -> String {
        s.split(separator: "\n", omittingEmptySubsequences: false).map { $0.isEmpty ? "" : "    " + $0 }.joined(separator: "\n")
    }
}
