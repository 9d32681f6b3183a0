/// A parsed Go text/template (the subset docker's docs use), run over a `TemplateValue`.
///
///     let t = try GoTemplate("{{.Name | upper}}")
///     let s = try t.execute(.map(["Name": .string("web")]))  // "WEB"
public struct GoTemplate: Sendable {
    let nodes: [TemplateNode]
    let lexer: TemplateLexer
    /// docker inspect's fallback over raw JSON fails on a missing key ("map has no entry
    /// for key"); otherwise a missing key prints "<no value>", as Go's default.
    public var missingKeyIsError: Bool
    /// A table's header row: docker's json/split/join/title/lower/upper/pad/truncate return
    /// their first argument unchanged there.
    var headerMode = false

    public init(_ text: String, missingKeyIsError: Bool = false) throws {
        lexer = TemplateLexer(text)
        var parser = TemplateParser(lexer: lexer, functions: TemplateFunctions.names)
        nodes = try parser.parse()
        self.missingKeyIsError = missingKeyIsError
    }

    public func execute(_ data: TemplateValue) throws -> String {
        var run = TemplateRun(template: self, root: data)
        try run.walk(nodes, dot: data)
        return run.output
    }
}




/// One execution: the output so far and the variable scopes.
struct TemplateRun {
    let template: GoTemplate
    var output = ""
    var variables: [(String, TemplateValue)]

    init(template: GoTemplate, root: TemplateValue) {
        self.template = template
        variables = [("$", root)]
    }

    enum Flow: Error { case breakLoop, continueLoop }

    func fail(_ message: String, at offset: Int, node: String) -> TemplateError {
        TemplateError(kind: .execute, message: "template: :\(template.lexer.lineColumn(of: offset)): executing \"\" at <\(node)>: \(message)")
    }

    mutating func walk(_ nodes: [TemplateNode], dot: TemplateValue) throws {
        for n in nodes {
            switch n {
            case .text(let t): output += t
            case .action(let p):
                let v = try pipeline(p, dot: dot)
                if p.variables.isEmpty { output += v.printed }
            case .ifNode(let p, let body, let elseBody):
                try scoped { run in
                    if try run.pipeline(p, dot: dot).isTrue { try run.walk(body, dot: dot) } else if let e = elseBody { try run.walk(e, dot: dot) }
                }
            case .withNode(let p, let body, let elseBody):
                try scoped { run in
                    let v = try run.pipeline(p, dot: dot)
                    if v.isTrue { try run.walk(body, dot: v) } else if let e = elseBody { try run.walk(e, dot: dot) }
                }
            case .rangeNode(let p, let body, let elseBody):
                try scoped { run in try run.range(p, body, elseBody, dot: dot) }
            case .breakNode: throw Flow.breakLoop
            case .continueNode: throw Flow.continueLoop
            }
        }
    }

    mutating func scoped(_ body: (inout TemplateRun) throws -> Void) throws {
        let mark = variables.count
        defer { variables.removeLast(variables.count - mark) }
        try body(&self)
    }

    mutating func range(_ p: TemplatePipeline, _ body: [TemplateNode], _ elseBody: [TemplateNode]?, dot: TemplateValue) throws {
        var decl = p
        decl.variables = []
        let v = try pipeline(decl, dot: dot)
        var items: [(TemplateValue, TemplateValue)] = []
        switch v {
        case .array(let a): items = a.enumerated().map { (.int(Int64($0.offset)), $0.element) }
        case .map(let m): items = m.keys.sorted().map { (.string($0), m[$0]!) }
        case .int(let n): items = (0..<max(0, n)).map { (.int($0), .int($0)) }
        case .missing, .null: break
        default: throw fail("range can't iterate over \(v.printed)", at: p.offset, node: p.text)
        }
        if items.isEmpty {
            if let e = elseBody { try walk(e, dot: dot) }
            return
        }
        let mark = variables.count
        for (key, element) in items {
            variables.removeLast(variables.count - mark)
            if p.variables.count == 1 { bind(p.variables[0], element, assign: p.isAssign) }
            if p.variables.count == 2 {
                bind(p.variables[0], key, assign: p.isAssign)
                bind(p.variables[1], element, assign: p.isAssign)
            }
            do { try walk(body, dot: element) } catch Flow.breakLoop { break } catch Flow.continueLoop { continue }
        }
    }

    mutating func bind(_ name: String, _ v: TemplateValue, assign: Bool) {
        if assign, let i = variables.lastIndex(where: { $0.0 == name }) { variables[i].1 = v } else { variables.append((name, v)) }
    }

    mutating func pipeline(_ p: TemplatePipeline, dot: TemplateValue) throws -> TemplateValue {
        var value: TemplateValue?
        for c in p.commands {
            value = try command(c, dot: dot, piped: value)
        }
        let v = value ?? .missing
        for name in p.variables { bind(name, v, assign: p.isAssign) }
        return v
    }

    mutating func command(_ c: TemplateCommand, dot: TemplateValue, piped: TemplateValue?) throws -> TemplateValue {
        let head = c.operands[0]
        if case .function(let name) = head.kind {
            // and/or evaluate their arguments one by one and stop early, as Go does.
            if name == "and" || name == "or" {
                var args = Array(c.operands.dropFirst()).map { Optional($0) }
                if piped != nil { args.append(nil) }
                if args.isEmpty { throw fail("wrong number of args for \(name): want at least 1 got 0", at: c.offset, node: c.text) }
                var last = TemplateValue.missing
                for a in args {
                    last = try a.map { try operand($0, dot: dot) } ?? piped!
                    if last.isTrue != (name == "and") { return last }
                }
                return last
            }
            var args = try c.operands.dropFirst().map { try operand($0, dot: dot) }
            if let piped { args.append(piped) }
            do {
                if template.headerMode, TemplateFunctions.docker.contains(name), let first = args.first { return first }
                return try TemplateFunctions.call(name, args)
            } catch let e as TemplateFunctionError {
                throw fail(e.calling ? "error calling \(name): \(e.message)" : e.message, at: c.offset, node: c.text)
            }
        }
        var args = try c.operands.dropFirst().map { try operand($0, dot: dot) }
        if let piped { args.append(piped) }
        switch head.kind {
        case .field(let chain):
            return try fields(dot, chain, args: args, op: head)
        case .variable(let name, let chain) where !chain.isEmpty:
            return try fields(variable(name), chain, args: args, op: head)
        case .pipeline(let p, let chain) where !chain.isEmpty:
            return try fields(try pipeline(p, dot: dot), chain, args: args, op: head)
        default:
            if !args.isEmpty { throw fail("can't give argument to non-function \(head.text)", at: c.offset, node: c.text) }
            return try operand(head, dot: dot)
        }
    }

    func variable(_ name: String) -> TemplateValue {
        variables.last(where: { $0.0 == name })?.1 ?? .missing
    }

    mutating func operand(_ o: TemplateOperand, dot: TemplateValue) throws -> TemplateValue {
        switch o.kind {
        case .dot: return dot
        case .field(let chain): return try fields(dot, chain, args: [], op: o)
        case .variable(let name, let chain): return try fields(variable(name), chain, args: [], op: o)
        case .function(let name):
            do { return try TemplateFunctions.call(name, []) } catch let e as TemplateFunctionError {
                throw fail(e.calling ? "error calling \(name): \(e.message)" : e.message, at: o.offset, node: o.text)
            }
        case .string(let s): return .string(s)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .bool(let b): return .bool(b)
        case .null: throw fail("nil is not a command", at: o.offset, node: o.text)
        case .pipeline(let p, let chain): return try fields(try pipeline(p, dot: dot), chain, args: [], op: o)
        }
    }

    /// .A.B.C on a value; `args` go to the last field (a method such as .Label "k").
    func fields(_ start: TemplateValue, _ chain: [String], args: [TemplateValue], op: TemplateOperand) throws -> TemplateValue {
        var v = start
        for (n, name) in chain.enumerated() {
            let isLast = n == chain.count - 1
            let a = isLast ? args : []
            switch v {
            case .map(let m):
                if !a.isEmpty { throw fail("\(name) is not a method but has arguments", at: op.offset, node: op.text) }
                if let x = m[name] { v = x } else if template.missingKeyIsError {
                    throw fail("map has no entry for key \"\(name)\"", at: op.offset, node: op.text)
                } else {
                    v = .missing
                }
            case .object(let o):
                do {
                    guard let x = try o.field(name, args: a) else {
                        throw fail("can't evaluate field \(name) in type \(o.typeName)", at: op.offset, node: op.text)
                    }
                    v = x
                } catch let e as TemplateFunctionError {
                    throw fail(e.message, at: op.offset, node: op.text)
                }
            case .missing, .null:
                throw fail("nil pointer evaluating interface {}.\(name)", at: op.offset, node: op.text)
            default:
                throw fail("can't evaluate field \(name) in type \(v.goTypeName)", at: op.offset, node: op.text)
            }
        }
        return v
    }
}
