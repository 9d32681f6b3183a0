import ArgumentParser
import CryoClient
import CryoTLS
import FoundationEssentials
import Glibc

struct TLSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls",
        abstract: "Make the certificates for cryod on TCP with mutual TLS: a CA, then one certificate per daemon or client.",
        discussion: """
        cryod listens on TCP only with mutual TLS: every client (the docker CLI, docker-py, \
        cryo, another cryod) presents a certificate signed by the daemon's CA, and the \
        daemon presents one whose names match the address dialled.

          cryo tls init --dir ca
          cryo tls issue --ca ca --name node1 --ip 192.0.2.10 --out node1
          cryod -H unix:///run/cryo/cryo.sock -H tcp://192.0.2.10:2376 \\
                --tlsverify --tlscacert node1/ca.pem \\
                --tlscert node1/cert.pem --tlskey node1/key.pem
          cryo tls issue --ca ca --name me --out ~/.docker
          DOCKER_HOST=tcp://192.0.2.10:2376 DOCKER_TLS_VERIFY=1 docker ps

        Keep the CA directory (ca-key.pem) off the daemons' hosts if you can: whoever holds \
        it can issue certificates every cryod of that CA accepts.
        """,
        subcommands: [TLSInit.self, TLSIssue.self])
}

/// `--format json` output: the files written and what the certificate says.
struct TLSWritten: Encodable {
    var files: [String: String]
    var certificate: CertificateSummary
}

func printWritten(_ w: TLSWritten, format: String?) throws {
    if format == "json" {
        out(String(decoding: try encodeJSON(w), as: UTF8.self) + "\n")
        return
    }
    for k in w.files.keys.sorted() { out("wrote \(w.files[k]!)\n") }
    let c = w.certificate
    var names = c.dnsNames.map { "DNS:\($0)" } + c.ipAddresses.map { "IP:\($0)" }
    if names.isEmpty { names = ["none"] }
    out("subject \(c.subject), names \(names.joined(separator: ", ")), valid until \(c.notAfter)\n")
}

func validateFormat(_ format: String?) throws {
    if let f = format, f != "json" { throw ValidationError("unsupported --format \"\(f)\": only json") }
}

struct TLSInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a CA: DIR/ca.pem (the certificate, 0644) and DIR/ca-key.pem (its key, 0600).",
        discussion: """
        The key is ECDSA P-256; the certificate is self-signed, a CA (basicConstraints, \
        keyCertSign, cRLSign), valid for --days (default 3650). DIR is created 0700 if \
        missing. An existing ca-key.pem is never replaced without --force (replacing it \
        makes every certificate it signed untrusted).
        """)

    @Option(help: ArgumentHelp("Directory to write ca.pem and ca-key.pem to.", valueName: "DIR"))
    var dir: String

    @Option(help: ArgumentHelp("Common name of the CA (default \"cryo CA on HOSTNAME\": messages about another CA's certificates name their issuer).", valueName: "NAME"))
    var name: String?

    @Option(help: ArgumentHelp("Days the CA certificate is valid.", valueName: "N"))
    var days = 3650

    @Flag(help: "Replace an existing CA.")
    var force = false

    @Option(help: ArgumentHelp("json: print what was written as JSON.", valueName: "format"))
    var format: String?

    func validate() throws {
        try validateFormat(format)
        guard days >= 1 else { throw ValidationError("--days must be at least 1") }
    }

    func run() throws {
        do {
            let ca = try CertificateAuthority.create(commonName: name ?? "cryo CA on \(hostName())", days: days)
            let (cert, key) = try ca.write(to: dir, force: force)
            try printWritten(TLSWritten(files: ["ca": cert, "caKey": key], certificate: CertificateSummary(ca.certificate)), format: format)
        } catch let e as TLSError {
            throw ClientError.usage("cryo tls init: \(e)")
        }
    }
}

struct TLSIssue: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Issue a certificate signed by the CA: OUT/ca.pem, OUT/cert.pem, OUT/key.pem (what DOCKER_CERT_PATH holds).",
        discussion: """
        The certificate serves both ways (extendedKeyUsage serverAuth and clientAuth): as a \
        cryod's server certificate, and as its client certificate when it dials another \
        cryod; or as a client's (docker, docker-py, cryo). Its names (subjectAltName) are \
        every --name (DNS) and --ip: a client checks that the address it dials is one of \
        them. ECDSA P-256 key (0600), a fresh random serial, valid from an hour ago for \
        --days (default 365). OUT is created 0700 if missing; an existing key.pem is not \
        replaced without --force.
        """)

    @Option(help: ArgumentHelp("Directory of the CA (ca.pem, ca-key.pem), from `cryo tls init`.", valueName: "DIR"))
    var ca: String

    @Option(help: ArgumentHelp("DNS name the certificate is valid for; repeatable.", valueName: "NAME"))
    var name: [String] = []

    @Option(help: ArgumentHelp("IP address the certificate is valid for; repeatable.", valueName: "IP"))
    var ip: [String] = []

    @Option(help: ArgumentHelp("Days the certificate is valid.", valueName: "N"))
    var days = 365

    /// For tests: start the validity N days in the past (--days 1 --backdate 2 is expired).
    @Option(help: .hidden)
    var backdate: Int = 0

    @Option(help: ArgumentHelp("Directory to write ca.pem, cert.pem and key.pem to.", valueName: "DIR"))
    var out: String

    @Flag(help: "Replace an existing key.pem and cert.pem.")
    var force = false

    @Option(help: ArgumentHelp("json: print what was written as JSON.", valueName: "format"))
    var format: String?

    func validate() throws {
        try validateFormat(format)
        guard !name.isEmpty || !ip.isEmpty else { throw ValidationError("give at least one --name or --ip") }
        guard days >= 1 else { throw ValidationError("--days must be at least 1") }
        guard backdate >= 0 else { throw ValidationError("--backdate must not be negative") }
    }

    func run() throws {
        do {
            let authority = try CertificateAuthority.load(from: ca)
            let notBefore = backdate > 0 ? Date() - Double(backdate) * 86_400 : nil
            let issued = try authority.issue(names: name, ips: ip, days: days, notBefore: notBefore)
            let paths = try authority.write(issued, to: out, force: force)
            try printWritten(TLSWritten(files: ["ca": paths.caPath, "cert": paths.certPath, "key": paths.keyPath],
                                        certificate: CertificateSummary(issued.certificate)), format: format)
        } catch let e as TLSError {
            throw ClientError.usage("cryo tls issue: \(e)")
        }
    }
}

func hostName() -> String {
    var buf = [CChar](repeating: 0, count: 256)
    guard gethostname(&buf, buf.count - 1) == 0 else { return "localhost" }
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
