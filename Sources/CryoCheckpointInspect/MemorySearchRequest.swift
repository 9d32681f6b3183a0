/// A memory search handed to a child process (`cryo-monitor memory-search`, JSON on its stdin;
/// the matches come back as JSON on its stdout). A regex search runs there because Swift's
/// Regex cannot be stopped inside one match: a pathological pattern would spin a daemon
/// thread forever, a child can be killed.
public struct MemorySearchRequest: Codable, Sendable {
    public var directory: String
    public var processes: [InspectedProcess]
    public var pattern: MemorySearch.Pattern
    public var context: Int
    public var limit: Int
    public var budgetSeconds: Int

    public init(directory: String, processes: [InspectedProcess], pattern: MemorySearch.Pattern, context: Int,
                limit: Int = MemorySearch.defaultLimit, budgetSeconds: Int = MemorySearch.defaultBudgetSeconds) {
        (self.directory, self.processes, self.pattern, self.context, self.limit, self.budgetSeconds) =
            (directory, processes, pattern, context, limit, budgetSeconds)
    }

    public func run() throws -> [MemoryMatch] {
        try MemorySearch.search(directory: directory, processes: processes, pattern: pattern, context: context, limit: limit,
                                budgetSeconds: budgetSeconds)
    }
}
