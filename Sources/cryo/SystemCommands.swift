import ArgumentParser
import CryoClient
import FoundationEssentials

/// Reads the fields of a JSON object as strings (numbers and booleans as written).
struct LooseObject: Decodable {
    var values: [String: String] = [:]
    var objects: [String: LooseObject] = [:]
    var lists: [String: [LooseObject]] = [:]

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        for k in c.allKeys {
            if let s = try? c.decode(String.self, forKey: k) { values[k.stringValue] = s }
            else if let i = try? c.decode(Int64.self, forKey: k) { values[k.stringValue] = String(i) }
            else if let b = try? c.decode(Bool.self, forKey: k) { values[k.stringValue] = String(b) }
            else if let o = try? c.decode(LooseObject.self, forKey: k) { objects[k.stringValue] = o }
            else if let l = try? c.decode([LooseObject].self, forKey: k) { lists[k.stringValue] = l }
        }
    }

    subscript(_ k: String) -> String { values[k] ?? "" }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the cryo client and cryod server versions.")

    func run() throws {
        out("""
        Client:
         Version:           0.1.0
         API version:       \(DaemonClient.apiVersion)
         OS/Arch:           linux/amd64


        """)
        do {
            let v = try daemon().get(LooseObject.self, "/version")
            out("""
            Server: \(v.objects["Platform"]?["Name"] ?? "cryo")
             Engine:
              Version:          \(v["Version"])
              API version:      \(v["ApiVersion"]) (minimum version \(v["MinAPIVersion"]))
              OS/Arch:          \(v["Os"])/\(v["Arch"])
              Kernel version:   \(v["KernelVersion"])
              Experimental:     \(v["Experimental"])

            """)
        } catch {
            throw fail(error)
        }
    }
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Display system-wide information from cryod.")

    @Option(name: .long, help: ArgumentHelp("Output format: json prints the daemon's JSON; a Go template (docker's) formats it.", valueName: "string"))
    var format: String?

    func run() throws {
        do {
            let client = try daemon()
            let r = try client.call("GET", "/info")
            if try ListFormat.printReport(format, json: trimmed(r.body)) { return }
            if ListFormat.isJSON(format) {
                out(String(decoding: trimmed(r.body), as: UTF8.self) + "\n")
                return
            }
            let i = try client.decode(LooseObject.self, r.body, what: "info")
            out("""
            Server:
             Containers: \(i["Containers"])
              Running: \(i["ContainersRunning"])
              Paused: \(i["ContainersPaused"])
              Stopped: \(i["ContainersStopped"])
             Images: \(i["Images"])
             Server Version: \(i["ServerVersion"])
             Storage Driver: \(i["Driver"])
             Logging Driver: \(i["LoggingDriver"])
             Cgroup Driver: \(i["CgroupDriver"])
             Kernel Version: \(i["KernelVersion"])
             Operating System: \(i["OperatingSystem"])
             OSType: \(i["OSType"])
             Architecture: \(i["Architecture"])
             CPUs: \(i["NCPU"])
             Total Memory: \(Format.size(Int64(i["MemTotal"]) ?? 0))
             Name: \(i["Name"])
             ID: \(i["ID"])
             Docker Root Dir: \(i["DockerRootDir"])
             Experimental: \(i["ExperimentalBuild"])

            """)
        } catch {
            throw fail(error)
        }
    }
}
