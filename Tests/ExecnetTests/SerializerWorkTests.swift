// Decoding work is linear in the input: nested frozen sets (and tuples between them) are hashed
// once each, not once per enclosing level. Counted with `HashWork` (containers hashed), never timed.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing

@Suite struct SerializerWorkTests {
    /// `loads` input: frozensets `depth` deep around a tuple of `width` ints (issue 10 item 11).
    static func nestedFrozenSets(depth: Int, width: Int, tupleBetween: Bool = false) -> [UInt8] {
        var out: [UInt8] = [Serializer.formatVersion]
        func int32(_ opcode: UInt8, _ n: Int) {
            let raw = UInt32(truncatingIfNeeded: n)
            out += [opcode, UInt8(raw >> 24), UInt8((raw >> 16) & 0xFF), UInt8((raw >> 8) & 0xFF), UInt8(raw & 0xFF)]
        }
        for i in 0..<width { int32(Serializer.Opcode.int, i) }
        int32(Serializer.Opcode.buildTuple, width)
        for _ in 0..<depth {
            if tupleBetween { int32(Serializer.Opcode.buildTuple, 1) }
            int32(Serializer.Opcode.frozenSet, 1)
        }
        out.append(Serializer.Opcode.stop)
        return out
    }

    @Test("nested frozensets decode with work linear in their depth", arguments: [false, true])
    func nestedFrozenSetsAreLinear(tupleBetween: Bool) throws {
        let depth = tupleBetween ? 1_400 : 2_900
        let bytes = Self.nestedFrozenSets(depth: depth, width: 10, tupleBetween: tupleBetween)
        var decoded: Value = .none
        let work = try HashWork.measure { decoded = try loads(bytes) }
        // Hashing each level once is about 2 containers per level; the quadratic decoder hashed
        // every level below each new one (about depth²/2, over 4 million here).
        #expect(work <= 20 * depth, "hashed \(work) containers for \(depth) levels")
        // Comparing two decodings hashes each level once too.
        let again = try loads(bytes)
        var same = false
        let compareWork = HashWork.measure { same = decoded == again }
        #expect(same)
        #expect(compareWork <= 20 * depth, "compared with \(compareWork) containers hashed for \(depth) levels")
        var level = decoded
        var levels = 0
        while case .frozenSet(let members) = level, members.count == 1 {
            levels += 1
            level = members.first!
            if tupleBetween, case .tuple(let items) = level { level = items[0] }
        }
        #expect(levels == depth)
        #expect(level == .tuple((0..<10).map { .int(Int64($0)) }))
    }
}
