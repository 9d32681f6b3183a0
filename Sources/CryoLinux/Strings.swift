extension StringProtocol {
    /// The string without leading and trailing whitespace and newlines.
    public var trimmed: String {
        let ws: Set<Character> = [" ", "\n", "\t", "\r"]
        guard let first = firstIndex(where: { !ws.contains($0) }),
              let last = lastIndex(where: { !ws.contains($0) }) else { return "" }
        return String(self[first...last])
    }
}
