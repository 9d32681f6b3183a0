import ArgumentParser
import CryoClient
import FoundationEssentials

struct NetworkConnect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect",
        abstract: "Connect a container to a network.",
        discussion: """
        A cryo container has one network endpoint at a time: disconnect it from its network \
        first. A running container is attached at once (address, published ports, /etc/hosts); \
        a stopped one at its next start. Aliases and links are names on that network: aliases \
        for every container there, links only for this one.
        """)

    @Option(help: ArgumentHelp("Add network-scoped alias for the container.", valueName: "strings"))
    var alias: [String] = []

    @Option(help: ArgumentHelp("Add link to another container (NAME[:ALIAS]).", valueName: "list"))
    var link: [String] = []

    @Option(help: ArgumentHelp("IPv4 address.", valueName: "string"))
    var ip: String?

    @Argument(help: "The network.") var network: String
    @Argument(help: "The container.") var container: String

    func run() throws {
        struct Body: Encodable {
            struct Endpoint: Encodable {
                struct IPAM: Encodable { var IPv4Address: String }
                var Aliases: [String]?
                var Links: [String]?
                var IPAMConfig: IPAM?
            }
            var Container: String
            var EndpointConfig: Endpoint
        }
        let body = Body(Container: container, EndpointConfig: .init(Aliases: alias.isEmpty ? nil : alias,
                                                                    Links: link.isEmpty ? nil : link,
                                                                    IPAMConfig: ip.map { .init(IPv4Address: $0) }))
        do {
            try daemon().call("POST", "/networks/\(path(network))/connect", json: try encode(body))
        } catch {
            throw fail(error)
        }
    }
}

struct NetworkDisconnect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disconnect",
        abstract: "Disconnect a container from a network.",
        discussion: "A running container keeps only its loopback; its address is released.")

    @Flag(name: .shortAndLong, help: "Force the container to disconnect from a network (no difference for cryo).")
    var force = false

    @Argument(help: "The network.") var network: String
    @Argument(help: "The container.") var container: String

    func run() throws {
        struct Body: Encodable { var Container: String; var Force: Bool }
        do {
            try daemon().call("POST", "/networks/\(path(network))/disconnect", json: try encode(Body(Container: container, Force: force)))
        } catch {
            throw fail(error)
        }
    }
}
