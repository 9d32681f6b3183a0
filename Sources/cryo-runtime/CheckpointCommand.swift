import CryoLinux
import CryoRuntime

enum CheckpointCommand {
    static func checkpoint(runtime: Runtime, id: String, opts: ParsedOptions, criuPath: String) throws {
        throw CryoError("checkpoint: not implemented yet")
    }
    static func restore(runtime: Runtime, id: String, opts: ParsedOptions, criuPath: String) throws -> Int32 {
        throw CryoError("restore: not implemented yet")
    }
}
