// Which source paths RSync copies: ignore patterns as pytest-xdist's `rsyncignore`, or a predicate.

#if canImport(Glibc)
import Glibc
#endif

/// Which paths of the source directory ``RSync`` copies.
///
/// Ignore patterns work as pytest-xdist's `rsyncignore` (a path's `match`): a pattern without a
/// `/` is matched against every name (`*.pyc`, `__pycache__`, `.git`); a pattern with `/` is
/// matched against the last components of the relative path (`build/*.o` matches `a/build/x.o`);
/// a pattern starting with `/` is matched against the whole relative path (`/dist`). Glob syntax is
/// `fnmatch`'s: `*`, `?`, `[abc]`, `[!abc]`. An ignored directory is skipped with everything in it.
public struct RSyncFilter: Sendable {
    /// The ignore patterns.
    public let ignorePatterns: [String]
    private let include: (@Sendable (String) -> Bool)?

    /// A filter that ignores paths matching any of `ignorePatterns`.
    ///
    /// - Parameter ignorePatterns: Glob patterns on names or trailing paths (see the type's description).
    public init(ignoring ignorePatterns: [String] = []) {
        self.ignorePatterns = ignorePatterns
        self.include = nil
    }

    /// A filter that ignores paths matching any of `ignorePatterns` and those `include` rejects.
    ///
    /// - Parameters:
    ///   - ignorePatterns: Glob patterns on names or trailing paths.
    ///   - include: Called with each relative path not ignored by a pattern; `false` skips it.
    public init(ignoring ignorePatterns: [String] = [], include: @escaping @Sendable (String) -> Bool) {
        self.ignorePatterns = ignorePatterns
        self.include = include
    }

    /// Whether the relative path `path` (`/`-separated) is copied.
    public func includes(_ path: String) -> Bool {
        let components = path.split(separator: "/").map(String.init)
        for pattern in ignorePatterns where Self.matches(pattern, components) { return false }
        return include?(path) ?? true
    }

    private static func matches(_ pattern: String, _ components: [String]) -> Bool {
        let anchored = pattern.hasPrefix("/")
        let parts = pattern.split(separator: "/").map(String.init)
        guard !parts.isEmpty, parts.count <= components.count else { return false }
        if anchored && parts.count != components.count { return false }
        for (part, component) in zip(parts.reversed(), components.reversed()) where fnmatch(part, component, 0) != 0 {
            return false
        }
        return true
    }
}
