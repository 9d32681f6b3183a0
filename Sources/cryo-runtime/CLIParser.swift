/// A small runc-compatible command-line parser. runc's callers (containerd,
/// podman/conmon) use Go-style flags: global flags before the subcommand,
/// `--flag value`, `--flag=value`, and single-dash long flags (`-no-subreaper`).
struct CLIOption: Sendable {
    let name: String
    let short: Character?
    let takesValue: Bool
    let help: String
    init(_ name: String, short: Character? = nil, value: Bool = false, _ help: String) {
        self.name = name
        self.short = short
        self.takesValue = value
        self.help = help
    }
}

struct CLICommand: Sendable {
    let name: String
    let aliases: [String]
    let usage: String
    let summary: String
    let options: [CLIOption]
    /// Arguments after the first positional go to the command untouched (exec, ps).
    let stopAtFirstPositionalAfter: Int?
    init(_ name: String, aliases: [String] = [], usage: String, summary: String, options: [CLIOption],
                passThroughAfter: Int? = nil) {
        self.name = name
        self.aliases = aliases
        self.usage = usage
        self.summary = summary
        self.options = options
        self.stopAtFirstPositionalAfter = passThroughAfter
    }
}

struct ParsedOptions: Sendable {
    var values: [String: [String]] = [:]
    var positionals: [String] = []

    func has(_ name: String) -> Bool {
        guard let v = values[name]?.last else { return false }
        return v != "false"
    }
    func value(_ name: String) -> String? { values[name]?.last }
    func all(_ name: String) -> [String] { values[name] ?? [] }
}

enum CLIParseError: Error, CustomStringConvertible, Equatable {
    case unknownOption(String, command: String)
    case missingValue(String)
    var description: String {
        switch self {
        case .unknownOption(let o, let c): return "flag provided but not defined: \(o) (see '\(c) --help')"
        case .missingValue(let o): return "flag needs an argument: \(o)"
        }
    }
}

enum CLIParser {
    /// Parses `args` against `options`; stops at the first positional when
    /// `stopAtPositional` (so global flags end where the subcommand begins).
    static func parse(_ args: ArraySlice<String>, options: [CLIOption], commandName: String,
                             stopAtPositional: Bool = false, passThroughAfter: Int? = nil) throws -> (ParsedOptions, ArraySlice<String>) {
        var out = ParsedOptions()
        var i = args.startIndex
        while i < args.endIndex {
            let a = args[i]
            if a == "--" {
                out.positionals.append(contentsOf: args[(i + 1)...])
                return (out, [])
            }
            if let limit = passThroughAfter, out.positionals.count >= limit {
                out.positionals.append(contentsOf: args[i...])
                return (out, [])
            }
            if a.hasPrefix("-") && a.count > 1 {
                var name: String
                var inline: String?
                if a.hasPrefix("--") {
                    name = String(a.dropFirst(2))
                } else if a.count == 2 || (a.count > 3 && a.dropFirst(2).first == "=") {
                    // -d, or -b=value
                    let c = a.dropFirst().first!
                    guard let o = options.first(where: { $0.short == c }) else {
                        throw CLIParseError.unknownOption(a, command: commandName)
                    }
                    name = o.name + String(a.dropFirst(2))
                } else {
                    name = String(a.dropFirst())   // Go-style -long-flag
                }
                if let eq = name.firstIndex(of: "=") {
                    inline = String(name[name.index(after: eq)...])
                    name = String(name[..<eq])
                }
                guard let opt = options.first(where: { $0.name == name }) else {
                    throw CLIParseError.unknownOption(a, command: commandName)
                }
                if opt.takesValue {
                    if let v = inline {
                        out.values[opt.name, default: []].append(v)
                    } else {
                        i += 1
                        guard i < args.endIndex else { throw CLIParseError.missingValue(a) }
                        out.values[opt.name, default: []].append(args[i])
                    }
                } else {
                    out.values[opt.name, default: []].append(inline ?? "true")
                }
                i += 1
                continue
            }
            if stopAtPositional { return (out, args[i...]) }
            out.positionals.append(a)
            i += 1
        }
        return (out, [])
    }

    static func help(for c: CLICommand, program: String) -> String {
        var s = "\(program) \(c.name) - \(c.summary)\n\nUsage:\n  \(program) \(c.usage)\n"
        if !c.options.isEmpty {
            s += "\nOptions:\n"
            for o in c.options {
                let short = o.short.map { "-\($0), " } ?? "    "
                let flag = "--\(o.name)\(o.takesValue ? " value" : "")"
                s += "  \(short)\(flag.padding(28)) \(o.help)\n"
            }
        }
        return s
    }
}

extension String {
    func padding(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}
