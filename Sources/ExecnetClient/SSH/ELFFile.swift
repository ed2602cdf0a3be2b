// What the bundle maker reads from an ELF file: its machine, its interpreter (the dynamic loader it
// names) and the glibc symbol versions it needs (the GNU version-needs section). 64-bit
// little-endian files only (x86_64, aarch64, riscv64, ppc64le), which is every Linux Swift supports.

/// The few facts of an ELF file the worker bundle needs.
package struct ELFFile: Sendable {
    /// The machine, spelled as `uname -m` spells it (`x86_64`), or `machine-N` for an unknown one.
    package var architecture: String
    /// The interpreter (`PT_INTERP`), or `nil` for a shared library or a static executable.
    package var interpreter: String?
    /// The `GLIBC_x.y` versions the file needs, as number lists (`[2, 34]`).
    package var glibcVersions: [[Int]]

    /// A reason the bytes are not an ELF file this code reads.
    package struct Malformed: Error, Sendable, CustomStringConvertible {
        package var reason: String
        package var description: String { reason }
    }

    /// Parses `bytes`, checking every offset against the file's size.
    ///
    /// - Throws: ``Malformed`` if it is not a 64-bit little-endian ELF file or a table lies outside it.
    package init(_ bytes: [UInt8]) throws {
        func u16(_ at: Int) throws -> Int {
            guard at >= 0, at + 2 <= bytes.count else { throw Malformed(reason: "truncated ELF file") }
            return Int(bytes[at]) | Int(bytes[at + 1]) << 8
        }
        func u32(_ at: Int) throws -> Int {
            guard at >= 0, at + 4 <= bytes.count else { throw Malformed(reason: "truncated ELF file") }
            return Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
        }
        func u64(_ at: Int) throws -> Int {
            let low = try u32(at), high = try u32(at + 4)
            guard high < 1 << 30 else { throw Malformed(reason: "ELF offset out of range") }
            return low | high << 32
        }
        func string(_ at: Int, limit: Int) throws -> String {
            guard at >= 0, at < limit, limit <= bytes.count else { throw Malformed(reason: "ELF string outside its table") }
            var end = at
            while end < limit && bytes[end] != 0 { end += 1 }
            return String(decoding: bytes[at..<end], as: UTF8.self)
        }
        guard bytes.count >= 64, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46 else {
            throw Malformed(reason: "not an ELF file")
        }
        guard bytes[4] == 2, bytes[5] == 1 else { throw Malformed(reason: "not a 64-bit little-endian ELF file") }
        let machine = try u16(18)
        architecture = switch machine {
        case 62: "x86_64"
        case 183: "aarch64"
        case 243: "riscv64"
        case 21: "ppc64le"
        case 22: "s390x"
        default: "machine-\(machine)"
        }
        let programHeaders = try u64(32), sectionHeaders = try u64(40)
        let programEntrySize = try u16(54), programCount = try u16(56)
        let sectionEntrySize = try u16(58), sectionCount = try u16(60)

        interpreter = nil
        for index in 0..<programCount {
            let header = programHeaders + index * programEntrySize
            guard try u32(header) == 3 else { continue }  // PT_INTERP
            let offset = try u64(header + 8), size = try u64(header + 32)
            guard size <= bytes.count, offset <= bytes.count - size else { throw Malformed(reason: "PT_INTERP outside the file") }
            interpreter = try string(offset, limit: offset + size)
        }

        glibcVersions = []
        guard sectionCount > 0 else { return }
        struct Section { var type: Int; var offset: Int; var size: Int; var link: Int }
        var sections: [Section] = []
        for index in 0..<sectionCount {
            let header = sectionHeaders + index * sectionEntrySize
            sections.append(Section(type: try u32(header + 4), offset: try u64(header + 24), size: try u64(header + 32),
                                    link: try u32(header + 40)))
        }
        for section in sections where section.type == 0x6fff_fffe {  // SHT_GNU_verneed
            guard section.link < sections.count else { throw Malformed(reason: "version-needs section links no string table") }
            let strings = sections[section.link]
            guard strings.size <= bytes.count, strings.offset <= bytes.count - strings.size else {
                throw Malformed(reason: "string table outside the file")
            }
            var need = section.offset
            var needs = 0
            while needs < 10_000 {
                needs += 1
                let count = try u16(need + 2), aux = try u32(need + 8), next = try u32(need + 12)
                var entry = need + aux
                for _ in 0..<count {
                    let name = try string(strings.offset + (try u32(entry + 8)), limit: strings.offset + strings.size)
                    if name.hasPrefix("GLIBC_"), let version = Self.versionNumbers(String(name.dropFirst(6))) {
                        glibcVersions.append(version)
                    }
                    let nextAux = try u32(entry + 12)
                    if nextAux == 0 { break }
                    entry += nextAux
                }
                if next == 0 { break }
                need += next
            }
        }
    }

    /// `"2.34"` as `[2, 34]`; `nil` unless it is dot-separated decimal numbers.
    package static func versionNumbers(_ text: String) -> [Int]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard !parts.isEmpty, parts.count <= 4 else { return nil }
        var numbers: [Int] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 6, part.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(part) else { return nil }
            numbers.append(number)
        }
        return numbers
    }

    /// Whether version `a` is older than `b`, comparing number by number (a missing number is 0).
    package static func isOlder(_ a: [Int], than b: [Int]) -> Bool {
        for index in 0..<max(a.count, b.count) {
            let left = index < a.count ? a[index] : 0, right = index < b.count ? b[index] : 0
            if left != right { return left < right }
        }
        return false
    }
}
