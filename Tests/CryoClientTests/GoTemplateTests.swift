@testable import CryoClient
import Foundation
import Testing

/// Go text/template as docker uses it; expected strings are what docker 28's CLI prints for
/// the same data (checked against it with a stub daemon).
@Suite struct GoTemplateTests {
    let inspect: TemplateValue = try! TemplateJSON.parse("""
        {"Id":"4f1c2b3a5d6e","Name":"/web-1","State":{"Status":"running","Running":true,"Pid":4242,"ExitCode":0},
         "Config":{"Image":"alpine:3.19","Env":["A=1","PATH=/bin"],"Cmd":["sh","-c","x"],"Entrypoint":null,"Labels":{"b":"2","a":"x y"}},
         "NetworkSettings":{"Networks":{"bridge":{"IPAddress":"10.88.0.5"}}},"Ratio":2.5,"Tags":[1,2,3]}
        """)

    func run(_ t: String, _ data: TemplateValue? = nil, strict: Bool = true) throws -> String {
        try GoTemplate(t, missingKeyIsError: strict).execute(data ?? inspect)
    }

    func error(_ t: String, _ data: TemplateValue? = nil, strict: Bool = true) -> TemplateError? {
        do {
            _ = try run(t, data, strict: strict)
            return nil
        } catch let e as TemplateError {
            return e
        } catch {
            return nil
        }
    }

    @Test func fieldsAndNestedFields() throws {
        #expect(try run("{{.Name}}") == "/web-1")
        #expect(try run("{{.State.Running}} {{.State.Pid}}") == "true 4242")
        #expect(try run("{{.NetworkSettings.Networks.bridge.IPAddress}}") == "10.88.0.5")
        #expect(try run("x{{.}}y", .string("s")) == "xsy")
        #expect(try run("{{$.Name}} {{with .State}}{{$.Name}}:{{.Status}}{{end}}") == "/web-1 /web-1:running")
    }

    @Test func printingLikeGoFmt() throws {
        #expect(try run("{{.Config.Labels}}") == "map[a:x y b:2]")
        #expect(try run("{{.Config.Env}}") == "[A=1 PATH=/bin]")
        #expect(try run("{{.Config.Entrypoint}}") == "<nil>")
        #expect(try run("{{.Ratio}} {{.Tags}}") == "2.5 [1 2 3]")
        #expect(try run("{{.Nope}}", strict: false) == "<no value>")
        #expect(GoNumber.format(1.5e6) == "1.5e+06")
        #expect(GoNumber.format(0.00001) == "1e-05")
        #expect(GoNumber.format(123456.5) == "123456.5")
        #expect(GoNumber.format(1234567.5) == "1.2345675e+06")
        #expect(TemplateJSON.encode(.double(1234567.5)) == "1234567.5")
        #expect(GoNumber.format(0.25) == "0.25")
        #expect(GoNumber.format(-3.75) == "-3.75")
    }

    @Test func literalsAndTrimMarkers() throws {
        // docker ps --format '{{- .Names -}}  {{"x"}}  {{ 3 }} {{ 1.5 }} {{ -2 }} {{ true }}'
        let m = TemplateValue.map(["Names": .string("web-1")])
        #expect(try run("{{- .Names -}}  {{\"x\"}}  {{ 3 }} {{ 1.5 }} {{ -2 }} {{ true }}", m) == "web-1x  3 1.5 -2 true")
        #expect(try run("{{ 0x1F }} {{ 1e3 }} {{ 7.0 }} {{ 'a' }} {{ `raw\\n` }} {{ \"a\\tb\" }}") == "31 1000 7 97 raw\\n a\tb")
        #expect(try run("a  \n {{- /* comment */ -}} \n  b") == "ab")
        #expect(try run("{{/* c */}}x {{- /* c2 */ -}} y") == "xy")
        #expect(try run("{{-3}}") == "-3")
    }

    @Test func ifElseWithRange() throws {
        #expect(try run("{{if .State.Running}}up{{else}}down{{end}}") == "up")
        #expect(try run("{{if eq .State.Status \"exited\"}}a{{else if .State.Running}}b{{else}}c{{end}}") == "b")
        #expect(try run("{{with .Config.Entrypoint}}x{{else}}y{{end}}") == "y")
        #expect(try run("{{range .Config.Env}}{{.}};{{end}}") == "A=1;PATH=/bin;")
        #expect(try run("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}") == "a=x y,b=2,")
        #expect(try run("{{range $i, $e := .Config.Cmd}}{{$i}}:{{$e}} {{end}}") == "0:sh 1:-c 2:x ")
        #expect(try run("{{range .Config.Entrypoint}}x{{else}}empty{{end}}") == "empty")
        #expect(try run("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}") == "10.88.0.5")
        #expect(try run("{{range .Tags}}{{if eq . 2}}{{continue}}{{end}}{{if eq . 3}}{{break}}{{end}}{{.}}{{end}}") == "1")
        #expect(try run("{{$x := .Name}}{{$x}} {{$x = \"y\"}}{{$x}}") == "/web-1 y")
    }

    @Test func comparisonAndLogic() throws {
        #expect(try run("{{lt 1 2}} {{gt 1.5 1}} {{ne \"a\" \"b\"}} {{le 1 1}} {{ge 1 2}}") == "true true true true false")
        #expect(try run("{{eq .State.Pid 1 2 4242}} {{eq .State.Status \"running\"}}") == "true true")
        #expect(try run("{{and 1 0 2}} {{or 0 \"\" \"z\"}} {{not 0}} {{and 1 2}}") == "0 z true 2")
        // and/or stop early: the missing key after a false value is never evaluated.
        #expect(try run("{{and .State.ExitCode .Missing}}") == "0")
        #expect(try run("{{or .State.Running .Missing}}") == "true")
    }

    @Test func builtinFunctions() throws {
        #expect(try run("{{len .Config.Env}} {{len .Name}} {{len .Config.Labels}}") == "2 6 2")
        #expect(try run("{{index .Config.Env 1}} {{index .Config.Labels \"a\"}} [{{index .Config.Labels \"zz\"}}]") == "PATH=/bin x y []")
        #expect(try run("{{(index .Config.Cmd 0)}} {{(index .NetworkSettings.Networks \"bridge\").IPAddress}}") == "sh 10.88.0.5")
        #expect(try run("{{slice \"abc\" 1}} {{slice .Config.Env 0 1}}") == "bc [A=1]")
        #expect(try run("{{print \"a\" 1 2 \"b\"}}|{{println \"a\" 1}}|") == "a1 2b|a 1\n|")
        #expect(try run("{{html \"<a>\"}}") == "&lt;a&gt;")
    }

    @Test func printfVerbs() throws {
        #expect(try run("{{printf \"%q %x %5.2f %t %v\" \"a\" 255 3.14159 true 2.5}} {{printf \"%d\" \"s\"}}") == "\"a\" ff  3.14 true 2.5 %!d(string=s)")
        #expect(try run("{{printf \"%s|%-6s|%6s|%05d|%v|%d%%\" .Name \"ab\" \"ab\" 42 .Config.Env 7}}") == "/web-1|ab    |    ab|00042|[A=1 PATH=/bin]|7%")
        #expect(try run("{{printf \"%s\"}} {{printf \"%s\" \"a\" 1}}") == "%!s(MISSING) a%!(EXTRA int=1)")
    }

    @Test func dockerFunctions() throws {
        #expect(try run("{{json .Config.Env}} {{json .Config.Labels}} {{json \"a<b\"}} {{json .State.Running}}")
            == "[\"A=1\",\"PATH=/bin\"] {\"a\":\"x y\",\"b\":\"2\"} \"a<b\" true")
        #expect(try run("{{join (split \"Up 2 hours\" \" \") \"_\"}} {{join .Config.Env \",\"}}") == "Up_2_hours A=1,PATH=/bin")
        #expect(try run("{{split \"a,b\" \",\"}} {{len (split \"abc\" \"\")}}") == "[a b] 3")
        #expect(try run("{{title \"hello world-x\"}} {{lower \"ABC\"}} {{upper \"abc\"}}") == "Hello World-X abc ABC")
        #expect(try run("[{{pad \"a\" 1 2}}] {{truncate \"abcdef\" 3}} {{truncate \"ab\" 5}}") == "[ a  ] abc ab")
        #expect(try run("{{.Name | upper}} {{.Config.Env | len}} {{\",\" | split \"x,y\"}}") == "/WEB-1 2 [x y]")
        #expect(try run("{{.Name | printf \"%s!\" | upper}}") == "/WEB-1!")
    }

    @Test func parseErrorsNameTheLine() {
        #expect(error("{{.Names")?.message == "template: :1: unclosed action")
        #expect(error("{{foo .Names}}")?.message == "template: :1: function \"foo\" not defined")
        #expect(error("a\n{{if .X}}")?.message == "template: :2: unexpected EOF")
        #expect(error("{{end}}")?.message == "template: :1: unexpected {{end}}")
        #expect(error("{{}}")?.message == "template: :1: missing value for command")
        #expect(error("{{$x}}")?.message == "template: :1: undefined variable \"$x\"")
        #expect(error("{{.Names")?.kind == .parse)
    }

    @Test func executionErrorsLikeDocker() {
        #expect(error("{{.Foo}}")?.message == "template: :1:2: executing \"\" at <.Foo>: map has no entry for key \"Foo\"")
        #expect(error("{{.Foo.Bar}}")?.message == "template: :1:6: executing \"\" at <.Foo.Bar>: map has no entry for key \"Foo\"")
        #expect(error("{{.Foo.Bar}}", strict: false)?.message == "template: :1:6: executing \"\" at <.Foo.Bar>: nil pointer evaluating interface {}.Bar")
        #expect(error("{{index .Config.Env 5}}")?.message == "template: :1:2: executing \"\" at <index .Config.Env 5>: error calling index: index out of range: 5")
        #expect(error("{{eq 1 \"a\"}}")?.message == "template: :1:2: executing \"\" at <eq 1 \"a\">: error calling eq: incompatible types for comparison")
        #expect(error("{{len 3}}")?.message == "template: :1:2: executing \"\" at <len 3>: error calling len: len of type int")
        #expect(error("{{join .Tags \",\"}}")?.message == "template: :1:2: executing \"\" at <join .Tags \",\">: wrong type for value; expected []string; got []interface {}")
        #expect(error("{{.Name.X}}")?.message == "template: :1:7: executing \"\" at <.Name.X>: can't evaluate field X in type string")
        #expect(error("{{.Foo}}")?.kind == .execute)
    }

    @Test func jsonParsingAndEncoding() throws {
        let v = try TemplateJSON.parse(#"{"a":[1,2.5,"x\u00e9\n",true,null],"b":{}}"#)
        #expect(TemplateJSON.encode(v) == #"{"a":[1,2.5,"xé\n",true,null],"b":{}}"#)
        #expect(TemplateJSON.encode(.string("a<b&"), escapeHTML: true) == #""a\u003cb\u0026""#)
        #expect(throws: TemplateJSON.SyntaxError.self) { try TemplateJSON.parse("{\"a\":}") }
        #expect(throws: TemplateJSON.SyntaxError.self) { try TemplateJSON.parse("[1] x") }
    }

    @Test func tabWriterAlignsColumnBlocks() {
        let t = TabWriter()
        #expect(t.format("NAMES\tSTATUS\nweb-1\tUp 2 hours\n") == "NAMES     STATUS\nweb-1     Up 2 hours\n")
        // The last cell is not padded; an empty cell before it is.
        #expect(t.format("a\tb\tc\nlonger-than-ten\t\tz\n") == "a                 b         c\nlonger-than-ten             z\n")
        // A line without tabs ends the column block.
        #expect(t.format("a\tb\nno tabs\nccc\td\n") == "a         b\nno tabs\nccc       d\n")
    }
}
