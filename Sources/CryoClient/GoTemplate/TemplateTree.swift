/// The parsed form of a Go template: text, actions and the control structures
/// (if/else if/else, range with else, with, break/continue, variables).
indirect enum TemplateNode: Sendable {
    case text(String)
    case action(TemplatePipeline)
    case ifNode(TemplatePipeline, [TemplateNode], [TemplateNode]?)
    case rangeNode(TemplatePipeline, [TemplateNode], [TemplateNode]?)
    case withNode(TemplatePipeline, [TemplateNode], [TemplateNode]?)
    case breakNode
    case continueNode
}

/// `$x := cmd | cmd`: declared (or assigned) variables and the commands.
struct TemplatePipeline: Sendable {
    var variables: [String] = []
    var isAssign = false
    var commands: [TemplateCommand] = []
    var offset: Int
    var text: String
}

/// One command of a pipeline: a function or value and its arguments.
struct TemplateCommand: Sendable {
    var operands: [TemplateOperand]
    var offset: Int
    var text: String
}

struct TemplateOperand: Sendable {
    indirect enum Kind: Sendable {
        case dot
        case field([String])  // .A.B
        case variable(String, [String])  // $x.A
        case function(String)
        case string(String)
        case int(Int64)
        case double(Double)
        case bool(Bool)
        case null
        case pipeline(TemplatePipeline, [String])  // (pipeline).A
    }
    var kind: Kind
    /// Where Go reports it: a field chain at its last element.
    var offset: Int
    var text: String
}
