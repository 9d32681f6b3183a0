// What a test needs from the machine (root, CRIU, a tool), checked in one way for every test
// target: a missing requirement cancels the test locally (it shows as skipped, with the reason)
// and fails it under CI=true, where every test must run.

import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

public enum TestEnvironment {
    /// CI=true (or 1): missing requirements fail instead of skipping.
    public static let isCI: Bool = {
        let v = (ProcessInfo.processInfo.environment["CI"] ?? "").lowercased()
        return v == "true" || v == "1"
    }()

    /// The package root, derived from this file's path (Tests/CryoTestSupport/Requirements.swift).
    public static let packageRoot: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().standardizedFileURL.path
    }()
}

/// Looks `name` up in $PATH and the sbin directories (criu and runc live in /usr/sbin).
public func findExecutable(_ name: String) -> String? {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
    for dir in path + ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = dir + "/" + name
        if access(p, X_OK) == 0 { return p }
    }
    return nil
}

/// Thrown under CI=true when a requirement is missing: the test fails with the reason.
public struct RequirementNotMet: Error, CustomStringConvertible {
    public let description: String
}

/// The one policy for a missing requirement: under CI=true the test fails (throws
/// `RequirementNotMet`); elsewhere it is cancelled (reported as skipped) with the reason.
public func require(feature what: String, _ met: Bool, sourceLocation: SourceLocation = #_sourceLocation) throws {
    if met { return }
    if TestEnvironment.isCI {
        throw RequirementNotMet(description: "requirement not met under CI=true (tests must run): \(what)")
    }
    try Test.cancel("requirement not met: \(what) (set up the machine with scripts/setup.sh)", sourceLocation: sourceLocation)
}

/// The test must run as root (namespaces, mounts, cgroups, CRIU).
public func requireRoot(_ why: String = "", sourceLocation: SourceLocation = #_sourceLocation) throws {
    let reason = why.isEmpty ? "" : " (\(why))"
    try require(feature: "must run as root\(reason); euid is \(geteuid())", geteuid() == 0, sourceLocation: sourceLocation)
}

/// The path of executable `name`; `hint` says how to install it.
@discardableResult
public func requireExecutable(_ name: String, _ hint: String = "", sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let found = findExecutable(name)
    let extra = hint.isEmpty ? "" : " (\(hint))"
    try require(feature: "\(name) is not installed\(extra)", found != nil, sourceLocation: sourceLocation)
    return found!
}

/// Result of `criu check`, run once per test process: nil when it passed, else the reason.
private let criuCheckFailure: String? = {
    guard let criu = findExecutable("criu") else { return "criu is not installed (scripts/setup.sh installs CRIU 4.2)" }
    guard let r = try? Tool.run(criu, ["check"], timeout: 60) else { return "could not run \(criu) check" }
    if r.status != 0 { return "`criu check` failed (exit \(r.status)):\n\(r.stdout)\(r.stderr)" }
    return nil
}()

/// Root, an installed criu, and a passing `criu check`.
public func requireCRIU(sourceLocation: SourceLocation = #_sourceLocation) throws {
    try requireRoot("CRIU", sourceLocation: sourceLocation)
    try require(feature: criuCheckFailure ?? "criu", criuCheckFailure == nil, sourceLocation: sourceLocation)
}
