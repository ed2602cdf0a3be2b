// Cutting a worker's output into lines: whatever the chunks a pipe gives, the lines are the same;
// a partial last line comes at the end; CR LF ends a line like LF; an over-long line comes in
// bounded pieces, and what is held back stays bounded.

import Execnet
@testable import ExecnetCore
import Testing

@Suite struct OutputLineSplitterTests {
    /// The lines `chunks` make, with the partial last line at the end.
    private func lines(_ chunks: [String], bound: Int = 64) -> [String] {
        var splitter = OutputLineSplitter(maximumLineLength: bound)
        var result: [String] = []
        for chunk in chunks {
            splitter.feed(Array(chunk.utf8)[...]) { result.append(String(decoding: $0, as: UTF8.self)) }
        }
        splitter.finish { result.append(String(decoding: $0, as: UTF8.self)) }
        return result
    }

    @Test func aLineWrittenInTwoChunksIsOneLine() {
        #expect(lines(["hel", "lo\n"]) == ["hello"])
        #expect(lines(["hel", "lo\nwor", "ld\n"]) == ["hello", "world"])
    }

    @Test func aChunkWithManyLinesGivesEachInOrder() {
        #expect(lines(["a\nbb\n\nccc\nd"]) == ["a", "bb", "", "ccc", "d"])
    }

    @Test func thePartialLastLineComesOnlyAtTheEnd() {
        var splitter = OutputLineSplitter(maximumLineLength: 64)
        var seen: [[UInt8]] = []
        splitter.feed(Array("done\nno newline".utf8)[...]) { seen.append($0) }
        #expect(seen == [Array("done".utf8)])
        splitter.finish { seen.append($0) }
        #expect(seen == [Array("done".utf8), Array("no newline".utf8)])
        // Nothing is given twice.
        splitter.finish { seen.append($0) }
        #expect(seen.count == 2)
    }

    @Test func crLfEndsALineAndALoneCrIsText() {
        #expect(lines(["one\r\ntwo\r\n"]) == ["one", "two"])
        // The CR and the LF in different chunks.
        #expect(lines(["one\r", "\ntwo\n"]) == ["one", "two"])
        // A lone CR (a progress bar) stays in the line.
        #expect(lines(["10%\r20%\r30%\n"]) == ["10%\r20%\r30%"])
        #expect(lines(["\r\n", "\n"]) == ["", ""])
    }

    @Test func aLineLongerThanTheBoundComesInPiecesOfTheBound() {
        let long = String(repeating: "x", count: 25)
        #expect(lines([long + "\n"], bound: 10) == ["xxxxxxxxxx", "xxxxxxxxxx", "xxxxx"])
        // The same pieces whatever the chunks.
        let bytes = Array(long + "\nend\n")
        #expect(lines(bytes.map { String($0) }, bound: 10) == ["xxxxxxxxxx", "xxxxxxxxxx", "xxxxx", "end"])
        #expect(lines([String(repeating: "y", count: 20) + "\n"], bound: 10) == ["yyyyyyyyyy", "yyyyyyyyyy"])
        // A CR LF right after a full piece ends the line there, with no empty line after it.
        #expect(lines([String(repeating: "z", count: 10) + "\r", "\n"], bound: 10) == ["zzzzzzzzzz"])
    }

    @Test func whatIsHeldBackStaysBoundedWithoutANewline() {
        var splitter = OutputLineSplitter(maximumLineLength: 100)
        var given = 0
        for _ in 0..<1000 {
            splitter.feed([UInt8](repeating: UInt8(ascii: "a"), count: 1000)[...]) { piece in
                #expect(piece.count == 100)
                given += piece.count
            }
            #expect(splitter.pending.count <= 101)
        }
        splitter.finish { given += $0.count }
        #expect(given == 1_000_000)
    }
}
