import ArgumentParser
import CryoClient
import Glibc

// Global options come before the verb, as with docker (`cryo -H unix:///x ps`). They are
// taken off here and handed on through CRYO_HOST (and CRYO_TLSVERIFY, CRYO_TLSCACERT,
// CRYO_TLSCERT, CRYO_TLSKEY), which every command reads.
signal(SIGPIPE, SIG_IGN)
var arguments = Array(CommandLine.arguments.dropFirst())
let tlsFileFlags = ["--tlscacert": "CRYO_TLSCACERT", "--tlscert": "CRYO_TLSCERT", "--tlskey": "CRYO_TLSKEY"]
while let first = arguments.first {
    if first == "--tls" || first == "--tlsverify" || first == "--tlsverify=true" || first == "--tls=true" {
        setenv("CRYO_TLSVERIFY", "1", 1)
        arguments.removeFirst()
    } else if first == "--tlsverify=false" || first == "--tls=false" {
        err("cryo: \(first): cryo talks to a TCP daemon only with verified TLS\n")
        exit(125)
    } else if let env = tlsFileFlags[first] {
        guard arguments.count >= 2 else {
            err("flag needs an argument: \(first)\nSee 'cryo --help'.\n")
            exit(125)
        }
        setenv(env, arguments[1], 1)
        arguments.removeFirst(2)
    } else if let eq = first.firstIndex(of: "="), let env = tlsFileFlags[String(first[..<eq])] {
        setenv(env, String(first[first.index(after: eq)...]), 1)
        arguments.removeFirst()
    } else if first == "-H" || first == "--host" {
        guard arguments.count >= 2 else {
            err("flag needs an argument: \(first)\nSee 'cryo --help'.\n")
            exit(125)
        }
        setenv("CRYO_HOST", arguments[1], 1)
        arguments.removeFirst(2)
    } else if first.hasPrefix("--host=") {
        setenv("CRYO_HOST", String(first.dropFirst(7)), 1)
        arguments.removeFirst()
    } else if first.hasPrefix("-H=") {
        setenv("CRYO_HOST", String(first.dropFirst(3)), 1)
        arguments.removeFirst()
    } else if first.hasPrefix("-H"), first.count > 2 {
        setenv("CRYO_HOST", String(first.dropFirst(2)), 1)
        arguments.removeFirst()
    } else {
        break
    }
}

do {
    var command = try Cryo.parseAsRoot(arguments)
    try command.run()
    exit(0)
} catch let e as ExitCode {
    exit(e.rawValue)
} catch {
    let code = Cryo.exitCode(for: error)
    if code == .success {
        // --help and friends.
        Cryo.exit(withError: error)
    }
    if code == .validationFailure {
        // Flag and argument errors: docker's shape and exit status 125.
        var sub = arguments.prefix { !$0.hasPrefix("-") }.prefix(2).joined(separator: " ")
        if sub.isEmpty { sub = "" } else { sub = " " + sub }
        err("cryo: \(Cryo.message(for: error))\n\nRun 'cryo\(sub) --help' for more information\n")
        exit(125)
    }
    if let c = error as? ClientError {
        err(c.description + "\n")
        exit(1)
    }
    Cryo.exit(withError: error)
}
