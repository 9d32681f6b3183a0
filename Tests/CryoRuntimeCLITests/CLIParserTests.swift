import Testing
@testable import cryo_runtime

/// Options shaped like cryo-runtime's own tables (Commands.swift), kept here so these tests pin
/// the parser's behaviour, not the help texts.
private let globalOptions: [CLIOption] = [
    CLIOption("root", value: true, "state directory"),
    CLIOption("log", value: true, "log file"),
    CLIOption("log-format", value: true, "text or json"),
    CLIOption("debug", "debug logging"),
    CLIOption("systemd-cgroup", "accepted for runc compatibility"),
]

private let runOptions: [CLIOption] = [
    CLIOption("bundle", short: "b", value: true, "path to the bundle directory"),
    CLIOption("console-socket", value: true, "unix socket that receives the pty master"),
    CLIOption("pid-file", value: true, "file to write the container init's pid to"),
    CLIOption("detach", short: "d", "return once the container is running"),
    CLIOption("no-subreaper", "do not become a subreaper"),
    CLIOption("no-pivot", "use MS_MOVE + chroot instead of pivot_root"),
]

private let execOptions: [CLIOption] = [
    CLIOption("process", short: "p", value: true, "path to a process.json"),
    CLIOption("detach", short: "d", "do not wait for the process"),
    CLIOption("tty", short: "t", "allocate a pseudo-TTY"),
    CLIOption("env", short: "e", value: true, "set an environment variable (repeatable)"),
    CLIOption("cwd", value: true, "working directory in the container"),
    CLIOption("user", short: "u", value: true, "UID[:GID] to run as"),
]

private func parse(_ args: [String], _ options: [CLIOption], command: String = "cryo-runtime run",
                   stopAtPositional: Bool = false, passThroughAfter: Int? = nil) throws -> (ParsedOptions, [String]) {
    let (o, rest) = try CLIParser.parse(args[...], options: options, commandName: command,
                                        stopAtPositional: stopAtPositional, passThroughAfter: passThroughAfter)
    return (o, Array(rest))
}

@Suite struct CLIParserTests {
    @Test func doubleDashFlagWithSeparateValue() throws {
        let (o, rest) = try parse(["--bundle", "/b", "--pid-file", "/run/p.pid", "ID"], runOptions)
        #expect(o.value("bundle") == "/b")
        #expect(o.value("pid-file") == "/run/p.pid")
        #expect(o.positionals == ["ID"])
        #expect(rest.isEmpty)
        #expect(!o.has("detach"))
        #expect(o.value("console-socket") == nil)
    }

    @Test func doubleDashFlagWithInlineValue() throws {
        let (o, _) = try parse(["--bundle=/my/bundle", "--pid-file=", "ID"], runOptions)
        #expect(o.value("bundle") == "/my/bundle")
        #expect(o.value("pid-file") == "")          // an explicit empty value is still a value
        #expect(o.positionals == ["ID"])
    }

    @Test func inlineValueKeepsLaterEqualsSigns() throws {
        let (o, _) = try parse(["--env=A=B=C", "ID"], execOptions)
        #expect(o.all("env") == ["A=B=C"])
    }

    @Test func shortFlags() throws {
        let (o, _) = try parse(["-d", "-b", "/bundle", "ID"], runOptions)
        #expect(o.has("detach"))
        #expect(o.values["detach"] == ["true"])
        #expect(o.value("bundle") == "/bundle")    // stored under the long name
        #expect(o.values["b"] == nil)
        #expect(o.values["d"] == nil)
        #expect(o.positionals == ["ID"])
    }

    @Test func goStyleSingleDashLongFlags() throws {
        let (o, _) = try parse(["-no-subreaper", "-bundle", "/b", "-pid-file=/p", "ID"], runOptions)
        #expect(o.has("no-subreaper"))
        #expect(!o.has("no-pivot"))
        #expect(o.value("bundle") == "/b")
        #expect(o.value("pid-file") == "/p")
        #expect(o.positionals == ["ID"])
    }

    @Test func repeatedFlagsAccumulateInOrder() throws {
        let (o, _) = try parse(["--env", "A=1", "-e", "B=2", "--env=C=3", "ID", "true"], execOptions)
        #expect(o.all("env") == ["A=1", "B=2", "C=3"])
        #expect(o.value("env") == "C=3")            // value() is the last one
        #expect(o.all("cwd") == [])
    }

    @Test func doubleDashEndsOptions() throws {
        let (o, rest) = try parse(["-d", "--", "--bundle", "-x", "ID"], runOptions)
        #expect(o.has("detach"))
        #expect(o.value("bundle") == nil)
        #expect(o.positionals == ["--bundle", "-x", "ID"])
        #expect(rest.isEmpty)
    }

    @Test func singleDashIsAPositional() throws {
        let (o, _) = try parse(["-", "ID"], runOptions)
        #expect(o.positionals == ["-", "ID"])
    }

    @Test func unknownLongFlagIsReportedLikeGo() throws {
        let e = #expect(throws: CLIParseError.self) {
            _ = try parse(["--bogus", "ID"], runOptions, command: "cryo-runtime run")
        }
        #expect(e == .unknownOption("--bogus", command: "cryo-runtime run"))
        #expect(e?.description == "flag provided but not defined: --bogus (see 'cryo-runtime run --help')")
    }

    @Test func unknownShortAndSingleDashFlags() throws {
        let short = #expect(throws: CLIParseError.self) { _ = try parse(["-z", "ID"], runOptions) }
        #expect(short == .unknownOption("-z", command: "cryo-runtime run"))
        let long = #expect(throws: CLIParseError.self) { _ = try parse(["-bogus=1"], runOptions) }
        // The flag is reported as the user typed it.
        #expect(long == .unknownOption("-bogus=1", command: "cryo-runtime run"))
        // A value-less flag given a value it does not know about is still a known flag.
        let (o, _) = try parse(["--detach=false"], runOptions)
        #expect(o.values["detach"] == ["false"])
    }

    @Test func missingValue() throws {
        let e = #expect(throws: CLIParseError.self) { _ = try parse(["ID", "--bundle"], runOptions) }
        #expect(e == .missingValue("--bundle"))
        #expect(e?.description == "flag needs an argument: --bundle")
        let s = #expect(throws: CLIParseError.self) { _ = try parse(["-b"], runOptions) }
        #expect(s == .missingValue("-b"))
    }

    @Test func valueMayLookLikeAFlag() throws {
        // "--flag value" takes the next argument whatever it looks like (Go does the same).
        let (o, _) = try parse(["--bundle", "-d", "ID"], runOptions)
        #expect(o.value("bundle") == "-d")
        #expect(!o.has("detach"))
        #expect(o.positionals == ["ID"])
    }

    @Test func hasTreatsFalseAsUnset() throws {
        let (o, _) = try parse(["--detach=false", "-no-subreaper=true", "--no-pivot"], runOptions)
        #expect(!o.has("detach"))
        #expect(o.has("no-subreaper"))
        #expect(o.has("no-pivot"))
        // The last occurrence wins.
        let (o2, _) = try parse(["--detach", "--detach=false"], runOptions)
        #expect(!o2.has("detach"))
        let (o3, _) = try parse(["--detach=false", "-d"], runOptions)
        #expect(o3.has("detach"))
        // A value option is "set" unless its value is literally "false".
        let (o4, _) = try parse(["--bundle", "x"], runOptions)
        #expect(o4.has("bundle"))
        #expect(!o4.has("never-given"))
    }

    @Test func globalFlagsStopAtTheSubcommand() throws {
        let argv = ["cryo-runtime", "--root", "/run/r", "--debug", "-log", "/l", "run", "-d", "--bundle", "/b", "ID"]
        let (g, rest) = try CLIParser.parse(argv.dropFirst(), options: globalOptions, commandName: "cryo-runtime",
                                            stopAtPositional: true)
        #expect(g.value("root") == "/run/r")
        #expect(g.has("debug"))
        #expect(g.value("log") == "/l")
        #expect(g.positionals.isEmpty)
        #expect(Array(rest) == ["run", "-d", "--bundle", "/b", "ID"])
        // The remaining slice keeps its indices into argv; parsing continues from it.
        #expect(rest.startIndex == 6)
        let (o, rest2) = try CLIParser.parse(rest.dropFirst(), options: runOptions, commandName: "cryo-runtime run")
        #expect(o.has("detach"))
        #expect(o.value("bundle") == "/b")
        #expect(o.positionals == ["ID"])
        #expect(rest2.isEmpty)
    }

    @Test func globalFlagsWithoutSubcommand() throws {
        let (g, rest) = try parse(["--root", "/r"], globalOptions, stopAtPositional: true)
        #expect(g.value("root") == "/r")
        #expect(rest.isEmpty)
        // Subcommand flags before the subcommand are not global flags.
        #expect(throws: CLIParseError.unknownOption("--bundle", command: "cryo-runtime")) {
            _ = try CLIParser.parse(["--bundle", "/b", "run"][...], options: globalOptions,
                                    commandName: "cryo-runtime", stopAtPositional: true)
        }
    }

    @Test func execPassesEverythingAfterTheContainerIDThrough() throws {
        let (o, rest) = try parse(["-t", "ID", "sh", "-c", "x"], execOptions, command: "cryo-runtime exec",
                                  passThroughAfter: 1)
        #expect(o.has("tty"))
        #expect(o.positionals == ["ID", "sh", "-c", "x"])
        #expect(rest.isEmpty)
    }

    @Test func execOptionsAfterTheCommandBelongToTheCommand() throws {
        let (o, _) = try parse(["--env", "A=1", "ID", "ls", "--env", "B", "-d", "--bogus", "-e"], execOptions,
                               passThroughAfter: 1)
        #expect(o.all("env") == ["A=1"])
        #expect(!o.has("detach"))
        #expect(o.positionals == ["ID", "ls", "--env", "B", "-d", "--bogus", "-e"])
    }

    @Test func passThroughAppliesOnlyAfterTheLimit() throws {
        // Flags before the container id are still parsed (and still validated).
        #expect(throws: CLIParseError.self) {
            _ = try parse(["--bogus", "ID", "sh"], execOptions, passThroughAfter: 1)
        }
        // ps-style: one positional, then the rest verbatim.
        let (o, _) = try parse(["ID", "-ef"], [CLIOption("format", short: "f", value: true, "fmt")],
                               passThroughAfter: 1)
        #expect(o.positionals == ["ID", "-ef"])
        #expect(o.value("format") == nil)
        // Without passThroughAfter the same arguments are flags.
        #expect(throws: CLIParseError.unknownOption("-ef", command: "cryo-runtime run")) {
            _ = try parse(["ID", "-ef"], [CLIOption("format", short: "f", value: true, "fmt")])
        }
    }

    @Test func emptyArguments() throws {
        let (o, rest) = try parse([], runOptions)
        #expect(o.positionals.isEmpty)
        #expect(o.values.isEmpty)
        #expect(rest.isEmpty)
    }

    @Test func helpListsEveryOption() {
        let cmd = CLICommand("exec", usage: "exec [options] CONTAINER-ID [COMMAND [ARG...]]",
                             summary: "run a new process in a running container",
                             options: execOptions + [CLIOption("a-really-long-option-name-over-28", value: true, "long one")],
                             passThroughAfter: 1)
        #expect(cmd.stopAtFirstPositionalAfter == 1)
        let text = CLIParser.help(for: cmd, program: "cryo-runtime")
        #expect(text.hasPrefix("cryo-runtime exec - run a new process in a running container\n"))
        #expect(text.contains("Usage:\n  cryo-runtime exec [options] CONTAINER-ID [COMMAND [ARG...]]\n"))
        #expect(text.contains("\nOptions:\n"))
        let lines = text.split(separator: "\n").map(String.init)
        for opt in cmd.options {
            let flag = "--\(opt.name)" + (opt.takesValue ? " value" : "")
            guard let line = lines.first(where: { $0.contains(flag + " ") && $0.hasSuffix(opt.help) }) else {
                Issue.record("help has no line for --\(opt.name): \(text)")
                continue
            }
            if let s = opt.short {
                #expect(line.hasPrefix("  -\(s), --\(opt.name)"), "\(line)")
            } else {
                #expect(line.hasPrefix("      --\(opt.name)"), "\(line)")
            }
        }
        // Value-less options are not advertised as taking a value.
        #expect(text.contains("--tty "))
        #expect(!text.contains("--tty value"))
        #expect(text.contains("--env value"))
        // A name longer than the column is still separated from its help.
        #expect(text.contains("--a-really-long-option-name-over-28 value long one"))
    }

    @Test func helpWithoutOptionsHasNoOptionsSection() {
        let cmd = CLICommand("start", usage: "start CONTAINER-ID", summary: "start it", options: [])
        let text = CLIParser.help(for: cmd, program: "cryo-runtime")
        #expect(text == "cryo-runtime start - start it\n\nUsage:\n  cryo-runtime start CONTAINER-ID\n")
    }
}
