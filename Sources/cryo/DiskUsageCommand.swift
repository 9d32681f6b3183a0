import ArgumentParser
import CryoClient
import FoundationEssentials

struct SystemCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "system", abstract: "Manage cryod: disk usage, prune, information.",
        subcommands: [SystemDF.self, SystemPrune.self, Info.self, Events.self])
}

/// `docker system df`: one row per kind (images, containers, local volumes, build cache) with
/// how many there are, how many are in use, their size and what a prune would reclaim.
struct SystemDF: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "df", abstract: "Show cryod's disk usage.")

    @Flag(name: .shortAndLong, help: "Show detailed information on space usage (per image and container).")
    var verbose = false

    @Option(name: .long, help: ArgumentHelp("Output format: table (default), json, or a Go template as docker's (.Type, .TotalCount, .Active, .Size, .Reclaimable).", valueName: "string"))
    var format: String?

    struct DF: Decodable {
        struct VolumeUsage: Decodable {
            struct Usage: Decodable { var Size: Int64; var RefCount: Int64 }
            var Name: String
            var UsageData: Usage?
        }
        var LayersSize: Int64?
        var Images: [ImageSummaryJSON]?
        var Containers: [ContainerSummaryJSON]?
        var Volumes: [VolumeUsage]?
    }

    func run() throws {
        do {
            let client = try daemon()
            let df = try client.decode(DF.self, try client.call("GET", "/system/df").body, what: "system df")
            if verbose && ListFormat.template(format) == nil && !ListFormat.isJSON(format) { return printVerbose(df) }
            let rows = Self.summary(df)
            if ListFormat.isJSON(format) {
                for r in rows { out(String(decoding: try encode(r), as: UTF8.self) + "\n") }
            } else if let t = ListFormat.template(format) {
                let values = rows.map { r in TemplateValue.map(r.mapValues { .string($0) }) }
                let header = TemplateHeader(names: ["Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
                                                    "Reclaimable": "RECLAIMABLE"])
                try ListFormat.printList(t, rows: values, header: .object(header))
            } else {
                out(Format.table([["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]]
                                 + rows.map { [$0["Type"]!, $0["TotalCount"]!, $0["Active"]!, $0["Size"]!, $0["Reclaimable"]!] }))
            }
        } catch {
            throw fail(error)
        }
    }

    /// docker's four rows. Images: reclaimable is what unused images hold beyond layers they
    /// share; containers: the writable layers of those not running.
    static func summary(_ df: DF) -> [[String: String]] {
        let images = df.Images ?? [], containers = df.Containers ?? []
        let activeImages = images.filter { ($0.Containers ?? 0) > 0 }
        let imagesSize = df.LayersSize ?? images.reduce(0) { $0 + ($1.Size ?? 0) }
        let unused = images.filter { ($0.Containers ?? 0) == 0 }.reduce(Int64(0)) { $0 + max(0, ($1.Size ?? 0) - max(0, $1.SharedSize ?? 0)) }
        let reclaimImages = min(unused, imagesSize)
        let running = Set(["running", "paused", "restarting"])
        let containersSize = containers.reduce(Int64(0)) { $0 + ($1.SizeRw ?? 0) }
        let reclaimContainers = containers.filter { !running.contains($0.State ?? "") }.reduce(Int64(0)) { $0 + ($1.SizeRw ?? 0) }
        let volumes = df.Volumes ?? []
        let volumesSize = volumes.reduce(Int64(0)) { $0 + ($1.UsageData?.Size ?? 0) }
        let reclaimVolumes = volumes.filter { ($0.UsageData?.RefCount ?? 0) == 0 }.reduce(Int64(0)) { $0 + ($1.UsageData?.Size ?? 0) }
        func percent(_ part: Int64, _ whole: Int64) -> String { whole > 0 ? " (\(part * 100 / whole)%)" : " (0%)" }
        return [
            ["Type": "Images", "TotalCount": String(images.count), "Active": String(activeImages.count),
             "Size": Format.size(imagesSize), "Reclaimable": Format.size(reclaimImages) + percent(reclaimImages, imagesSize)],
            ["Type": "Containers", "TotalCount": String(containers.count),
             "Active": String(containers.filter { running.contains($0.State ?? "") }.count),
             "Size": Format.size(containersSize), "Reclaimable": Format.size(reclaimContainers) + percent(reclaimContainers, containersSize)],
            ["Type": "Local Volumes", "TotalCount": String(volumes.count), "Active": String(volumes.filter { ($0.UsageData?.RefCount ?? 0) > 0 }.count),
             "Size": Format.size(volumesSize), "Reclaimable": Format.size(reclaimVolumes) + percent(reclaimVolumes, volumesSize)],
            ["Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"],
        ]
    }

    func printVerbose(_ df: DF) {
        let t = now()
        var images = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"]]
        for i in df.Images ?? [] {
            let created = i.Created.map { Format.duration(seconds: t - Double($0)) + " ago" } ?? ""
            let shared = max(0, i.SharedSize ?? 0)
            for tag in (i.RepoTags ?? []).isEmpty ? ["<none>:<none>"] : i.RepoTags! {
                let (repo, tg) = tag == "<none>:<none>" ? ("<none>", "<none>") : Format.splitReference(tag)
                images.append([repo, tg, Format.shortID(i.Id), created, Format.size(i.Size ?? 0), Format.size(shared),
                               Format.size((i.Size ?? 0) - shared), String(i.Containers ?? 0)])
            }
        }
        var containers = [["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"]]
        for c in df.Containers ?? [] {
            let created = c.Created.map { Format.duration(seconds: t - Double($0)) + " ago" } ?? ""
            containers.append([Format.shortID(c.Id), c.Image ?? "", "\"" + Format.ellipsis(c.Command ?? "", 20) + "\"", "0",
                               Format.size(c.SizeRw ?? 0), created, c.Status ?? "",
                               (c.Names ?? []).map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 }.joined(separator: ",")])
        }
        out("Images space usage:\n\n" + Format.table(images) + "\nContainers space usage:\n\n" + Format.table(containers)
            + "\nLocal Volumes space usage:\n\n"
            + Format.table([["VOLUME NAME", "LINKS", "SIZE"]] + (df.Volumes ?? []).map {
                [$0.Name, String($0.UsageData?.RefCount ?? 0), Format.size($0.UsageData?.Size ?? 0)]
            }) + "\nBuild cache usage: 0B\n")
    }
}
