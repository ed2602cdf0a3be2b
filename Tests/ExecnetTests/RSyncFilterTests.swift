// RSync's pure parts: ignore patterns as pytest-xdist's rsyncignore, link rebasing, path checks.

@testable import ExecnetClient
@testable import ExecnetCore
import Testing

@Suite struct RSyncFilterTests {
    @Test func aNamePatternMatchesAnyComponentsName() {
        let filter = RSyncFilter(ignoring: ["*.pyc", "__pycache__"])
        #expect(!filter.includes("a.pyc"))
        #expect(!filter.includes("pkg/sub/mod.pyc"))
        #expect(!filter.includes("pkg/__pycache__"))
        #expect(filter.includes("pkg/mod.py"))
        #expect(filter.includes("pyc"))
    }

    @Test func aPathPatternMatchesTrailingComponentsAndALeadingSlashAnchors() {
        let filter = RSyncFilter(ignoring: ["build/*.o", "/dist"])
        #expect(!filter.includes("build/x.o"))
        #expect(!filter.includes("a/b/build/x.o"))
        #expect(filter.includes("build/x.c"))
        #expect(filter.includes("x.o"), "one component cannot match a two-component pattern")
        #expect(!filter.includes("dist"))
        #expect(filter.includes("a/dist"), "an anchored pattern matches the whole relative path only")
    }

    @Test func aPredicateFiltersWhatThePatternsLetThrough() {
        let filter = RSyncFilter(ignoring: ["*.tmp"]) { !$0.hasPrefix("secret") }
        #expect(!filter.includes("secret.txt"))
        #expect(!filter.includes("x.tmp"))
        #expect(filter.includes("public.txt"))
    }

    @Test func anAbsoluteLinkIntoTheSourceBecomesRelative() {
        #expect(RSyncSource.rebase("/src/a/b/f", link: "a/l", root: "/src") == "b/f")
        #expect(RSyncSource.rebase("/src/x/f", link: "a/b/l", root: "/src") == "../../x/f")
        #expect(RSyncSource.rebase("/src/f", link: "l", root: "/src") == "f")
        #expect(RSyncSource.rebase("/srcother/f", link: "l", root: "/src") == "/srcother/f", "a sibling is outside")
        #expect(RSyncSource.rebase("../up", link: "a/l", root: "/src") == "../up", "relative targets stay verbatim")
    }

    @Test func unsafePathsAreNamed() {
        for path in ["", "/abs", "..", "a/..", "a//b", "./a", "a/", "a\0b", String(repeating: "x", count: 256)] {
            #expect(RSyncWire.unsafePathReason(path) != nil, "\(path.debugDescription)")
        }
        for path in ["a", "a/b/c", ".hidden", "a..b", "…é"] {
            #expect(RSyncWire.unsafePathReason(path) == nil, "\(path)")
        }
    }
}
