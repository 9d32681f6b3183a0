import CShim
import CryoFuzz
import Glibc

// Two builds of one file. With CRYO_FUZZ (scripts/fuzz.sh: `-sanitize=fuzzer -DCRYO_FUZZ`)
// main hands over to libFuzzer, which calls the target named by $CRYO_FUZZ_TARGET with each
// input. Without it, `cryo-fuzz TARGET
// FILE...` replays inputs (a crash reproduced outside libFuzzer).

private func complain(_ s: String) {
    let b = Array(s.utf8)
    _ = b.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

private func target() -> @Sendable ([UInt8]) -> Void {
    let name = getenv("CRYO_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let t = FuzzTargets.all[name] else {
        let known = FuzzTargets.all.keys.sorted().joined(separator: ", ")
        complain("cryo-fuzz: set CRYO_FUZZ_TARGET to one of: \(known)\n")
        exit(2)
    }
    return t
}

#if CRYO_FUZZ
nonisolated(unsafe) private var selected: (@Sendable ([UInt8]) -> Void)?

// libFuzzer's archive brings its own main along, which calls this; whichever main the
// linker keeps, the same target runs.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    if selected == nil { selected = target() }
    selected?(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

// libFuzzer's own main is not used: SwiftPM links an executable's entry point under a
// renamed symbol, so cryo-fuzz keeps a Swift main that hands over to libFuzzer's driver.
@main struct CryoFuzzMain {
    static func main() {
        selected = target()
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        let rc = LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) }
        exit(rc)
    }
}
#else
@main struct CryoFuzzReplay {
    static func main() {
        let args = CommandLine.arguments.dropFirst()
        guard let name = args.first, let t = FuzzTargets.all[name] else {
            let known = FuzzTargets.all.keys.sorted().joined(separator: ", ")
            complain("usage: cryo-fuzz TARGET FILE...  (targets: \(known)); scripts/fuzz.sh builds the libFuzzer binary\n")
            exit(2)
        }
        for file in args.dropFirst() {
            guard let bytes = try? FuzzInput.read(file) else { complain("cryo-fuzz: cannot open \(file)\n"); exit(1) }
            t(bytes)
            print("ok \(file)")
        }
    }
}
#endif
