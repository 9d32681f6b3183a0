import CryoFuzz
import Glibc
import Testing

/// Every seed and every input that once crashed a fuzz target (Tests/CryoFuzzTests/Corpus/
/// <target>/, crashes named `crash-*`) goes through the target again: a regression traps here.
@Suite struct CorpusReplayTests {
    static let corpus: String = {
        let file = "\(#filePath)"
        return String(file[..<file.lastIndex(of: "/")!]) + "/Corpus"
    }()

    static func files(_ target: String) -> [String] {
        let dir = corpus + "/" + target
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) { p in
                p.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if !name.hasPrefix(".") { out.append(dir + "/" + name) }
        }
        return out.sorted()
    }

    @Test(arguments: FuzzTargets.all.keys.sorted())
    func replay(_ target: String) throws {
        let inputs = Self.files(target)
        #expect(!inputs.isEmpty, "no corpus for fuzz target \(target) in \(Self.corpus)")
        let run = try #require(FuzzTargets.all[target])
        for path in inputs { run(try FuzzInput.read(path)) }
    }
}
