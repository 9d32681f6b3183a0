/// Go's text/tabwriter as docker's formatter uses it (minwidth 10, padding 3, spaces):
/// tab-terminated cells are aligned per column block — consecutive lines that have a cell
/// in that column — and the text after a line's last tab is not padded.
public struct TabWriter {
    public var minWidth = 10
    public var padding = 3

    public init(minWidth: Int = 10, padding: Int = 3) {
        self.minWidth = minWidth
        self.padding = padding
    }

    public func format(_ text: String) -> String {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        }
        var out = ""
        var widths: [Int] = []
        write(&out, lines, 0, lines.count, &widths)
        // The last line (after the final newline, usually empty) has no newline of its own.
        out.removeLast()
        return out
    }

    /// tabwriter's recursive `format`: find the block of lines with a cell in this column,
    /// size the column, then do the next column inside the block.
    func write(_ out: inout String, _ lines: [[String]], _ start: Int, _ end: Int, _ widths: inout [Int]) {
        let column = widths.count
        var line0 = start
        var this = start
        while this < end {
            if column >= lines[this].count - 1 { this += 1; continue }
            writeLines(&out, lines, line0, this, widths)
            line0 = this
            var width = minWidth
            while this < end, column < lines[this].count - 1 {
                width = max(width, lines[this][column].unicodeScalars.count + padding)
                this += 1
            }
            widths.append(width)
            write(&out, lines, line0, this, &widths)
            widths.removeLast()
            line0 = this
        }
        writeLines(&out, lines, line0, end, widths)
    }

    func writeLines(_ out: inout String, _ lines: [[String]], _ a: Int, _ b: Int, _ widths: [Int]) {
        for i in a..<b { writeLine(&out, lines[i], widths: widths, newline: true) }
    }

    func writeLine(_ out: inout String, _ cells: [String], widths: [Int], newline: Bool) {
        for (j, c) in cells.enumerated() {
            out += c
            if j < widths.count { out += String(repeating: " ", count: max(0, widths[j] - c.unicodeScalars.count)) }
        }
        if newline { out += "\n" }
    }
}
