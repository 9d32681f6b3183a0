@testable import CryoClient
import Foundation
import Testing

/// `cryo ps/images/network ls --format`: the same data through docker 28's CLI (a stub
/// daemon answering these lists) printed exactly these strings.
@Suite struct ListTemplateTests {
    let now = 1_000_000.0

    var containers: [ContainerSummaryJSON] {
        let json = """
            [{"Id":"4f1c2b3a5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708","Names":["/web-1"],"Image":"alpine:3.19",
              "ImageID":"sha256:aa","Command":"sh -c 'while true; do sleep 1; done'","Created":991600,"State":"running",
              "Status":"Up 2 hours","Labels":{"b":"2","a":"x y"},
              "Ports":[{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},{"PrivatePort":53,"Type":"udp"}],
              "NetworkSettings":{"Networks":{"bridge":{}}}},
             {"Id":"99887766554433221100aabbccddeeff00112233445566778899aabbccddeeff","Names":["/db"],
              "Image":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","ImageID":"sha256:bb",
              "Command":"redis-server","Created":998800,"State":"exited","Status":"Exited (0) 3 seconds ago","Labels":{},"Ports":[]}]
            """
        return try! JSONDecoder().decode([ContainerSummaryJSON].self, from: Data(json.utf8))
    }

    var images: [ImageSummaryJSON] {
        let json = """
            [{"Id":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
              "RepoTags":["alpine:3.19","localhost:5000/my/alpine:latest"],"Created":136000,"Size":7380000,"Containers":-1,"SharedSize":-1},
             {"Id":"sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210","RepoTags":[],"Created":998800,"Size":123}]
            """
        return try! JSONDecoder().decode([ImageSummaryJSON].self, from: Data(json.utf8))
    }

    func ps(_ format: String, truncate: Bool = true) throws -> String {
        try TemplateOutput.list(format, rows: containers.map { .object(ContainerContext($0, truncate: truncate, now: now)) },
                                header: ContainerContext.header)
    }

    func imageList(_ format: String) throws -> String {
        try TemplateOutput.list(format, rows: images.flatMap { ImageContext.rows($0, truncate: true, now: now) }.map { .object($0) },
                                header: ImageContext.header)
    }

    @Test func formatChoice() {
        #expect(TemplateOutput.choice(nil) == .defaultTable)
        #expect(TemplateOutput.choice("table") == .defaultTable)
        #expect(TemplateOutput.choice("json") == .json)
        #expect(TemplateOutput.choice("{{json .}}") == .json)
        #expect(TemplateOutput.choice("{{.ID}}") == .template("{{.ID}}"))
    }

    @Test func psPlainTemplate() throws {
        #expect(try ps("{{.Names}} {{.Status}}") == "web-1 Up 2 hours\ndb Exited (0) 3 seconds ago\n")
        #expect(try ps("{{.ID}}") == "4f1c2b3a5d6e\n998877665544\n")
        #expect(try ps("{{.ID}}", truncate: false).hasPrefix("4f1c2b3a5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708\n"))
        // Written as two characters, \t and \n are a tab and a newline, as in docker.
        #expect(try ps(#"{{.Names}}\t{{.State}}\n"#) == "web-1\trunning\n\ndb\texited\n\n")
        #expect(try ps(#"{{.Label "a"}}|{{.Labels}}|{{.Size}}|{{.Networks}}|{{.Mounts}}|{{.LocalVolumes}}"#)
            == "x y|a=x y,b=2|0B|bridge||0\n||0B|||0\n")
        #expect(try ps("{{.Names | upper}} {{len .Names}} {{json .Names}}") == "WEB-1 5 \"web-1\"\nDB 2 \"db\"\n")
        #expect(try ps("{{if eq .State \"running\"}}up{{else}}down{{end}}") == "up\ndown\n")
    }

    @Test func psTableMatchesDocker() throws {
        #expect(try ps(#"table {{.Names}}\t{{.Status}}\t{{.Ports}}"#) == """
            NAMES     STATUS                     PORTS
            web-1     Up 2 hours                 53/udp, 0.0.0.0:8080->80/tcp
            db        Exited (0) 3 seconds ago   \n
            """)
        #expect(try ps(#"table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"#) == """
            CONTAINER ID   IMAGE                                                                     COMMAND                  CREATED          STATUS                     PORTS                          NAMES
            4f1c2b3a5d6e   alpine:3.19                                                               "sh -c 'while true; …"   2 hours ago      Up 2 hours                 53/udp, 0.0.0.0:8080->80/tcp   web-1
            998877665544   sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef   "redis-server"           20 minutes ago   Exited (0) 3 seconds ago                                  db

            """)
        // Header cells go through docker's header functions unchanged; a label column is titled by its last part.
        #expect(try ps(#"table {{.Label "x.ab-c"}}\t{{.Labels}}\t{{.Size}}\t{{.Networks}}\t{{.State}}\t{{.LocalVolumes}}|{{json .Names}}|{{.Names | upper}}"#) == """
            ab c      LABELS      SIZE      NETWORKS   STATE     LOCAL VOLUMES|NAMES|NAMES
                      a=x y,b=2   0B        bridge     running   0|"web-1"|WEB-1
                                  0B                   exited    0|"db"|DB

            """)
        // No rows: the header alone.
        #expect(try TemplateOutput.list("table {{.Names}}", rows: [], header: ContainerContext.header) == "NAMES\n")
    }

    @Test func psTemplateErrors() {
        #expect(throws: TemplateError(kind: .execute, message: "template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo in type *formatter.ContainerContext")) {
            try ps("{{.Foo}}")
        }
        #expect(throws: TemplateError(kind: .execute, message: "template: :1:2: executing \"\" at <.Label>: wrong number of args for Label: want 1 got 0")) {
            try ps("{{.Label}}")
        }
        #expect(throws: TemplateError(kind: .parse, message: "template: :1: unclosed action")) { try ps("{{.Names") }
    }

    @Test func psJSONObjectEscapesHTML() throws {
        let line = try ps("{{json .}}").split(separator: "\n")[0]
        #expect(line.contains(#""Ports":"53/udp, 0.0.0.0:8080-\u003e80/tcp""#))
        #expect(line.contains(#""Names":"web-1""#))
        #expect(line.contains(#""Platform":null"#))
    }

    @Test func imagesMatchDocker() throws {
        #expect(try imageList("{{.Repository}}:{{.Tag}}") == "alpine:3.19\nlocalhost:5000/my/alpine:latest\n<none>:<none>\n")
        #expect(try imageList(#"table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Digest}}\t{{.CreatedSince}}\t{{.Size}}\t{{.Containers}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.VirtualSize}}"#) == """
            REPOSITORY                 TAG       IMAGE ID       DIGEST    CREATED          SIZE      CONTAINERS   SHARED SIZE   UNIQUE SIZE   SIZE
            alpine                     3.19      0123456789ab   <none>    10 days ago      7.38MB    N/A          N/A           N/A           7.38MB
            localhost:5000/my/alpine   latest    0123456789ab   <none>    10 days ago      7.38MB    N/A          N/A           N/A           7.38MB
            <none>                     <none>    fedcba987654   <none>    20 minutes ago   123B      N/A          N/A           N/A           123B

            """)
        #expect(throws: TemplateError(kind: .execute, message: "template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo in type *formatter.imageContext")) {
            try imageList("{{.Foo}}")
        }
    }

    @Test func networksMatchDocker() throws {
        let n = try JSONDecoder().decode(NetworkJSON.self, from: Data("""
            {"Name":"bridge","Id":"abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789","Created":"2026-01-01T00:00:00.000000000Z",
             "Scope":"local","Driver":"bridge","EnableIPv6":false,"Internal":false,"Labels":{}}
            """.utf8))
        setenv("TZ", "UTC", 1)
        let out = try TemplateOutput.list(#"table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}\t{{.IPv6}}\t{{.Internal}}\t{{.CreatedAt}}"#,
                                          rows: [.object(NetworkContext(n, truncate: true))], header: NetworkContext.header)
        #expect(out == """
            NETWORK ID     NAME      DRIVER    SCOPE     IPV6      INTERNAL   CREATED AT
            abcdef012345   bridge    bridge    local     false     false      2026-01-01 00:00:00 +0000 UTC

            """)
    }

    @Test func inspectTemplates() throws {
        let item = Array(#"{"Name":"/web-1","State":{"Running":true}}"#.utf8)
        #expect(try TemplateOutput.inspect("{{.State.Running}}", items: [item, item]) == "true\ntrue\n")
        #expect(try TemplateOutput.inspect("json", items: [item]) == "[" + String(decoding: item, as: UTF8.self) + "]\n")
        #expect(throws: TemplateError(kind: .execute, message: "template: :1:2: executing \"\" at <.Foo>: map has no entry for key \"Foo\"")) {
            try TemplateOutput.inspect("{{.Foo}}", items: [item])
        }
        #expect(throws: TemplateError(kind: .parse, message: "template: :1: unclosed action")) { try TemplateOutput.inspect("{{.Config", items: []) }
    }
}
