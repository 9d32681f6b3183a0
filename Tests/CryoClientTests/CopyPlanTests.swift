@testable import cryo
import Testing

/// `cryo cp`'s client-side rules (docker's): how an argument names a container, and where a
/// source lands for each kind of destination.
@Suite struct CopyPlanTests {
    @Test func argumentsNameAContainerOnlyBeforeAColon() {
        #expect(CopyArgument.split("web:/etc/hosts") == ("web", "/etc/hosts"))
        #expect(CopyArgument.split("/abs/with:colon") == (nil, "/abs/with:colon"))
        #expect(CopyArgument.split("./rel:colon") == (nil, "./rel:colon"))
        #expect(CopyArgument.split("plain") == (nil, "plain"))
        #expect(CopyArgument.split("-") == (nil, "-"))
    }

    @Test func splitKeepsATrailingDot() {
        #expect(CopyArgument.splitDir("/a/b") == "/a")
        #expect(CopyArgument.splitBase("/a/b") == "b")
        #expect(CopyArgument.splitBase("/a/b/.") == ".")
        #expect(CopyArgument.splitDir("/a/b/.") == "/a/b")
        #expect(CopyArgument.splitBase("/") == "/")
        #expect(CopyArgument.splitDir("/x") == "/")
    }

    @Test func intoAnExistingDirectoryKeepsTheName() throws {
        let p = try CopyPlan.make(sourcePath: "/src/f.txt", sourceIsDir: false, rebaseName: nil,
                                  destination: .init(path: "/tmp", exists: true, isDir: true))
        #expect(p == CopyPlan(directory: "/tmp", rebase: nil))
    }

    @Test func toANewNameRenamesTheSource() throws {
        let p = try CopyPlan.make(sourcePath: "/src/tree", sourceIsDir: true, rebaseName: nil,
                                  destination: .init(path: "/tmp/copy", exists: false, isDir: false))
        #expect(p == CopyPlan(directory: "/tmp", rebase: ("tree", "copy")))
        let contents = try CopyPlan.make(sourcePath: "/src/tree/.", sourceIsDir: true, rebaseName: nil,
                                         destination: .init(path: "/tmp/contents", exists: false, isDir: false))
        #expect(contents == CopyPlan(directory: "/tmp", rebase: (".", "contents")))
    }

    @Test func aFollowedLinkKeepsTheLinksName() throws {
        let p = try CopyPlan.make(sourcePath: "/real/target", sourceIsDir: false, rebaseName: "link",
                                  destination: .init(path: "/out", exists: true, isDir: true))
        #expect(p == CopyPlan(directory: "/out", rebase: ("target", "link")))
    }

    @Test func refusalsSayWhy() {
        #expect(throws: (any Error).self) {
            try CopyPlan.make(sourcePath: "/d", sourceIsDir: true, rebaseName: nil,
                              destination: .init(path: "/file", exists: true, isDir: false))
        }
        #expect(throws: (any Error).self) {
            try CopyPlan.make(sourcePath: "/f", sourceIsDir: false, rebaseName: nil,
                              destination: .init(path: "/missing/", exists: false, isDir: false))
        }
    }

    @Test func sizesAreDockersHumanUnits() {
        #expect(CopyArgument.humanSize(12) == "12B")
        #expect(CopyArgument.humanSize(1500) == "1.5kB")
        #expect(CopyArgument.humanSize(2_000_000) == "2.0MB")
    }
}
