/// Builds the tree from the lexer's segments, with Go's parse errors ("function \"x\" not
/// defined", "unexpected {{end}}", "missing value for command", ...).
struct TemplateParser {
    let lexer: TemplateLexer
    let functions: Set<String>
    var segments: [TemplateLexer.Segment] = []
    var index = 0
    var rangeDepth = 0
    /// Declared variable names in scope, innermost last.
    var scopes: [[String]] = [["$"]]

    init(lexer: TemplateLexer, functions: Set<String>) {
        self.lexer = lexer
        self.functions = functions
    }

    static let keywords: Set<String> = ["if", "else", "end", "range", "with", "break", "continue", "define", "template", "block", "nil"]

    mutating func parse() throws -> [TemplateNode] {
        segments = try lexer.segments()
        let (nodes, stop) = try list()
        if let stop {
            throw lexer.error("unexpected {{\(stop.word)}}", at: stop.offset)
        }
        return nodes
    }

    struct Stop {
        var word: String  // "end" or "else"
        var tokens: ArraySlice<TemplateLexer.Token>
        var offset: Int
    }

    /// Nodes until {{end}}/{{else ...}} (returned) or the end of input (nil).
    mutating func list() throws -> ([TemplateNode], Stop?) {
        var nodes: [TemplateNode] = []
        while index < segments.count {
            let seg = segments[index]
            index += 1
            switch seg {
            case .text(let t): nodes.append(.text(t))
            case .action(let tokens, let offset):
                guard let first = tokens.first else { throw lexer.error("missing value for command", at: offset) }
                if case .identifier(let word) = first.kind {
                    switch word {
                    case "end", "else":
                        return (nodes, Stop(word: word, tokens: tokens.dropFirst(), offset: offset))
                    case "if", "range", "with":
                        nodes.append(try control(word, tokens.dropFirst(), offset: offset))
                        continue
                    case "break", "continue":
                        if rangeDepth == 0 { throw lexer.error("{{\(word)}} outside {{range}}", at: offset) }
                        if tokens.count > 1 { throw lexer.error("unexpected \(tokens[1].text) in {{\(word)}}", at: offset) }
                        nodes.append(word == "break" ? .breakNode : .continueNode)
                        continue
                    case "define", "template", "block":
                        throw lexer.error("{{\(word)}} is not supported by cryo's templates", at: offset)
                    default: break
                    }
                }
                nodes.append(.action(try pipeline(tokens[...], offset: offset, context: "command")))
            }
        }
        return (nodes, nil)
    }

    /// if/range/with: the pipeline, the body, and an else branch (`else if` nests an if).
    mutating func control(_ word: String, _ tokens: ArraySlice<TemplateLexer.Token>, offset: Int) throws -> TemplateNode {
        scopes.append([])
        defer { scopes.removeLast() }
        let pipe = try pipeline(tokens, offset: offset, context: word, allowTwoVariables: word == "range")
        if word == "range" { rangeDepth += 1 }
        let (body, stop) = try list()
        if word == "range" { rangeDepth -= 1 }
        guard let stop else { throw lexer.error("unexpected EOF", at: lexer.source.count) }
        var elseBody: [TemplateNode]?
        if stop.word == "else" {
            if let next = stop.tokens.first, case .identifier(let w) = next.kind, w == "if" || w == "with" {
                // {{else if x}} … {{end}}: one end closes both.
                elseBody = [try control(w, stop.tokens.dropFirst(), offset: stop.offset)]
            } else {
                if let extra = stop.tokens.first { throw lexer.error("unexpected \(extra.text) in else", at: stop.offset) }
                let (e, stop2) = try list()
                guard let stop2 else { throw lexer.error("unexpected EOF", at: lexer.source.count) }
                if stop2.word != "end" { throw lexer.error("expected end; found {{else}}", at: stop2.offset) }
                elseBody = e
            }
        } else if let extra = stop.tokens.first {
            throw lexer.error("unexpected \(extra.text) in end", at: stop.offset)
        }
        switch word {
        case "if": return .ifNode(pipe, body, elseBody)
        case "range": return .rangeNode(pipe, body, elseBody)
        default: return .withNode(pipe, body, elseBody)
        }
    }

    func text(_ tokens: ArraySlice<TemplateLexer.Token>) -> String {
        guard let a = tokens.first, let b = tokens.last else { return "" }
        return String(decoding: lexer.source[a.start..<b.end], as: UTF8.self)
    }

    mutating func pipeline(_ all: ArraySlice<TemplateLexer.Token>, offset: Int, context: String, allowTwoVariables: Bool = false) throws -> TemplatePipeline {
        var tokens = all
        var p = TemplatePipeline(offset: tokens.first?.start ?? offset, text: text(tokens))
        // Declarations: $x := … ; $i, $e := … (range); $x = …
        if case .variable(let v)? = tokens.first?.kind, tokens.count > 1 {
            let second = tokens[tokens.startIndex + 1].kind
            if second == .declare || second == .assign {
                p.variables = [v]
                p.isAssign = second == .assign
                tokens = tokens.dropFirst(2)
            } else if second == .comma, allowTwoVariables, tokens.count > 3, case .variable(let v2) = tokens[tokens.startIndex + 2].kind,
                tokens[tokens.startIndex + 3].kind == .declare || tokens[tokens.startIndex + 3].kind == .assign
            {
                p.variables = [v, v2]
                p.isAssign = tokens[tokens.startIndex + 3].kind == .assign
                tokens = tokens.dropFirst(4)
            }
            if p.isAssign {
                for v in p.variables where !scopes.contains(where: { $0.contains(v) }) { throw lexer.error("undefined variable \"\(v)\"", at: p.offset) }
            }
        }
        // Split on top-level pipes.
        var depth = 0
        var current: [TemplateLexer.Token] = []
        var groups: [[TemplateLexer.Token]] = []
        for t in tokens {
            switch t.kind {
            case .leftParen: depth += 1
            case .rightParen:
                depth -= 1
                if depth < 0 { throw lexer.error("unexpected right paren", at: t.start) }
            default: break
            }
            if t.kind == .pipe && depth == 0 {
                groups.append(current)
                current = []
            } else {
                current.append(t)
            }
        }
        if depth > 0 { throw lexer.error("unclosed left paren", at: tokens.last?.start ?? offset) }
        groups.append(current)
        for (n, g) in groups.enumerated() {
            if g.isEmpty {
                throw lexer.error(n == 0 && groups.count == 1 ? "missing value for \(context)" : "missing command", at: offset)
            }
            p.commands.append(try command(g[...]))
        }
        if !p.isAssign { scopes[scopes.count - 1] += p.variables }
        // A command after the first takes the piped value: it must be something callable.
        for c in p.commands.dropFirst() {
            switch c.operands[0].kind {
            case .function, .field, .variable, .pipeline, .dot: break
            default: throw lexer.error("non executable command in pipeline stage \(p.commands.firstIndex { $0.offset == c.offset }! + 1)", at: c.offset)
            }
        }
        return p
    }

    mutating func command(_ tokens: ArraySlice<TemplateLexer.Token>) throws -> TemplateCommand {
        var ops: [TemplateOperand] = []
        var i = tokens.startIndex
        while i < tokens.endIndex {
            ops.append(try operand(tokens, &i))
        }
        return TemplateCommand(operands: ops, offset: tokens.first!.start, text: text(tokens))
    }

    /// One operand with the fields chained right after it: `(index .X 0).Name`, `$v.A.B`.
    mutating func operand(_ tokens: ArraySlice<TemplateLexer.Token>, _ i: inout Int) throws -> TemplateOperand {
        let t = tokens[i]
        i += 1
        var op: TemplateOperand
        switch t.kind {
        case .dot: op = TemplateOperand(kind: .dot, offset: t.start, text: ".")
        case .field(let f): op = TemplateOperand(kind: .field([f]), offset: t.start, text: t.text)
        case .variable(let v):
            if !scopes.contains(where: { $0.contains(v) }) { throw lexer.error("undefined variable \"\(v)\"", at: t.start) }
            op = TemplateOperand(kind: .variable(v, []), offset: t.start, text: t.text)
        case .string(let s): op = TemplateOperand(kind: .string(s), offset: t.start, text: t.text)
        case .char(let c): op = TemplateOperand(kind: .int(c), offset: t.start, text: t.text)
        case .number(let n): op = TemplateOperand(kind: try number(n, at: t.start), offset: t.start, text: t.text)
        case .identifier(let w):
            switch w {
            case "true", "false": op = TemplateOperand(kind: .bool(w == "true"), offset: t.start, text: w)
            case "nil": op = TemplateOperand(kind: .null, offset: t.start, text: w)
            default:
                if Self.keywords.contains(w) { throw lexer.error("unexpected <\(w)> in command", at: t.start) }
                if !functions.contains(w) { throw lexer.error("function \"\(w)\" not defined", at: t.start) }
                op = TemplateOperand(kind: .function(w), offset: t.start, text: w)
            }
        case .leftParen:
            var depth = 1
            var j = i
            while j < tokens.endIndex {
                if tokens[j].kind == .leftParen { depth += 1 }
                if tokens[j].kind == .rightParen { depth -= 1; if depth == 0 { break } }
                j += 1
            }
            let inner = tokens[i..<j]
            if inner.isEmpty { throw lexer.error("missing value for parenthesized pipeline", at: t.start) }
            let p = try pipeline(inner, offset: t.start, context: "parenthesized pipeline")
            i = j + 1
            op = TemplateOperand(kind: .pipeline(p, []), offset: t.start, text: String(decoding: lexer.source[t.start..<tokens[j].end], as: UTF8.self))
        default:
            throw lexer.error("unexpected \"\(t.text)\" in operand", at: t.start)
        }
        // Chained fields directly after (no space): .A.B, $x.A, (…).A
        while i < tokens.endIndex, case .field(let f) = tokens[i].kind, tokens[i].start == tokens[i - 1].end {
            switch op.kind {
            case .field(let c): op.kind = .field(c + [f])
            case .variable(let v, let c): op.kind = .variable(v, c + [f])
            case .pipeline(let p, let c): op.kind = .pipeline(p, c + [f])
            case .dot: op.kind = .field([f])
            default: throw lexer.error("unexpected . after term \"\(op.text)\"", at: tokens[i].start)
            }
            op.text += tokens[i].text
            op.offset = tokens[i].start
            i += 1
        }
        return op
    }

    func number(_ text: String, at offset: Int) throws -> TemplateOperand.Kind {
        var s = text.replacingUnderscores()
        var negative = false
        if s.hasPrefix("-") { negative = true; s.removeFirst() } else if s.hasPrefix("+") { s.removeFirst() }
        let lower = s.lowercased()
        var value: Int64?
        if lower.hasPrefix("0x") { value = Int64(lower.dropFirst(2), radix: 16) }
        else if lower.hasPrefix("0o") { value = Int64(lower.dropFirst(2), radix: 8) }
        else if lower.hasPrefix("0b") { value = Int64(lower.dropFirst(2), radix: 2) }
        else if lower.count > 1, lower.hasPrefix("0"), lower.allSatisfy(\.isNumber) { value = Int64(lower.dropFirst(), radix: 8) }
        else { value = Int64(lower) }
        if let v = value { return .int(negative ? -v : v) }
        guard !lower.hasPrefix("0x"), let d = Double(lower) else { throw lexer.error("bad number syntax: \"\(text)\"", at: offset) }
        let signed = negative ? -d : d
        // Go: a float constant with an integral value is also an int (1e3 prints 1000).
        if signed.rounded() == signed, abs(signed) < 9.2e18 { return .int(Int64(signed)) }
        return .double(signed)
    }
}

extension String {
    fileprivate func replacingUnderscores() -> String { String(filter { $0 != "_" }) }
}
