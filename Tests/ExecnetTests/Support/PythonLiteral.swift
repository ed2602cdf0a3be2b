// A small parser of Python `repr` text (None, bools, ints, floats incl. inf/nan, complex,
// str and bytes with escapes, lists, tuples, dicts, sets, frozensets, `<Channel id=N>`),
// so the tests build expected `Value`s independently of the decoder under test.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime

struct PythonLiteralError: Error, CustomStringConvertible {
    let message: String
    let offset: Int
    var description: String { "python literal parse error at \(offset): \(message)" }
}

struct PythonLiteral {
    private let s: [Unicode.Scalar]
    private var i = 0
    /// Channels by id, so the same id yields the same object (channels compare by identity).
    private let channel: (Int32) -> Channel

    private init(_ text: String, channel: @escaping (Int32) -> Channel) {
        self.s = Array(text.unicodeScalars)
        self.channel = channel
    }

    static func parse(_ text: String, channel: @escaping (Int32) -> Channel = { Channel(id: $0) }) throws -> Value {
        var p = PythonLiteral(text, channel: channel)
        let v = try p.value()
        p.skipSpace()
        guard p.i == p.s.count else { throw p.fail("trailing text") }
        return v
    }

    private func fail(_ message: String) -> PythonLiteralError {
        PythonLiteralError(message: message, offset: i)
    }

    private var peek: Unicode.Scalar? { i < s.count ? s[i] : nil }

    private mutating func skipSpace() {
        while let c = peek, c == " " { i += 1 }
    }

    private mutating func expect(_ text: String) throws {
        for c in text.unicodeScalars {
            guard peek == c else { throw fail("expected \(text)") }
            i += 1
        }
    }

    private mutating func consume(_ text: String) -> Bool {
        let scalars = Array(text.unicodeScalars)
        guard i + scalars.count <= s.count, Array(s[i..<(i + scalars.count)]) == scalars else { return false }
        i += scalars.count
        return true
    }

    private mutating func value() throws -> Value {
        skipSpace()
        guard let c = peek else { throw fail("unexpected end") }
        switch c {
        case "N": try expect("None"); return .none
        case "T": try expect("True"); return .bool(true)
        case "F": try expect("False"); return .bool(false)
        case "'", "\"": return .string(try quoted())
        case "b" where i + 1 < s.count && (s[i + 1] == "'" || s[i + 1] == "\""):
            i += 1
            return .bytes(try quotedBytes())
        case "[":
            i += 1
            return .list(try items(until: "]"))
        case "(":
            return try parenthesized()
        case "{":
            return try braced()
        case "<":
            try expect("<Channel id=")
            let digits = try numberToken()
            try expect(">")
            guard let id = Int32(digits) else { throw fail("bad channel id") }
            return .channel(channel(id))
        default:
            if consume("set()") { return .set([]) }
            if consume("frozenset()") { return .frozenSet([]) }
            if consume("frozenset({") {
                let members = try items(until: "}")
                try expect(")")
                return .frozenSet(ValueSet(members))
            }
            return try number()
        }
    }

    /// `(` … `)`: a tuple, or a complex number such as `(1+2j)`.
    private mutating func parenthesized() throws -> Value {
        let start = i
        i += 1
        if let c = peek, c == "-" || c == "+" || c == "." || c == "i" || c == "n" || c.properties.numericType != nil {
            let realText = try numberToken()
            if let sign = peek, sign == "+" || sign == "-" {
                let imagText = try numberToken()
                try expect("j)")
                return .complex(Complex(real: try double(realText), imaginary: try double(imagText)))
            }
        }
        i = start + 1
        let items = try items(until: ")")
        return .tuple(items)
    }

    private mutating func braced() throws -> Value {
        i += 1
        skipSpace()
        if consume("}") { return .dict([:]) }
        let first = try value()
        skipSpace()
        if consume(":") {
            var dict = ValueDictionary()
            dict[first] = try value()
            skipSpace()
            while consume(",") {
                let key = try value()
                skipSpace()
                try expect(":")
                dict[key] = try value()
                skipSpace()
            }
            try expect("}")
            return .dict(dict)
        }
        var members: ValueSet = [first]
        skipSpace()
        while consume(",") {
            members.insert(try value())
            skipSpace()
        }
        try expect("}")
        return .set(members)
    }

    /// Comma-separated values up to `end` (a trailing comma is allowed).
    private mutating func items(until end: Unicode.Scalar) throws -> [Value] {
        var out: [Value] = []
        skipSpace()
        if peek == end { i += 1; return out }
        while true {
            out.append(try value())
            skipSpace()
            if peek == end { i += 1; return out }
            try expect(",")
            skipSpace()
            if peek == end { i += 1; return out }
        }
    }

    /// A number token: optional sign, then digits/`.`/exponent, or `inf`/`nan`.
    private mutating func numberToken() throws -> String {
        var token = ""
        if let c = peek, c == "-" || c == "+" { token.unicodeScalars.append(c); i += 1 }
        if consume("inf") { return token + "inf" }
        if consume("nan") { return token + "nan" }
        while let c = peek {
            if ("0"..."9").contains(c) || c == "." {
                token.unicodeScalars.append(c)
            } else if c == "e" || c == "E" {
                token.unicodeScalars.append(c)
                i += 1
                if let sign = peek, sign == "+" || sign == "-" { token.unicodeScalars.append(sign) } else { continue }
            } else {
                break
            }
            i += 1
        }
        guard token.contains(where: { $0.isNumber || $0 == "i" || $0 == "n" }) else { throw fail("expected a number") }
        return token
    }

    private func double(_ token: String) throws -> Double {
        guard let d = Double(token) else { throw fail("bad float \(token)") }
        return d
    }

    private mutating func number() throws -> Value {
        let token = try numberToken()
        if consume("j") {
            return .complex(Complex(real: 0, imaginary: try double(token)))
        }
        if token.contains(where: { $0 == "." || $0 == "e" || $0 == "E" || $0 == "i" || $0 == "n" }) {
            return .float(try double(token))
        }
        if let small = Int64(token) { return .int(small) }
        do {
            return .bigInt(try BigInteger(parsing: token))
        } catch {
            throw fail("bad int \(token)")
        }
    }

    private mutating func hexEscape(_ digits: Int) throws -> UInt32 {
        guard i + digits <= s.count else { throw fail("short escape") }
        let text = String(String.UnicodeScalarView(s[i..<(i + digits)]))
        guard let v = UInt32(text, radix: 16) else { throw fail("bad escape") }
        i += digits
        return v
    }

    private mutating func quoted() throws -> String {
        let quote = s[i]
        i += 1
        var out = String.UnicodeScalarView()
        while let c = peek, c != quote {
            i += 1
            guard c == "\\" else { out.append(c); continue }
            guard let e = peek else { throw fail("dangling backslash") }
            i += 1
            switch e {
            case "\\", "'", "\"": out.append(e)
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "x", "u", "U":
                let v = try hexEscape(e == "x" ? 2 : e == "u" ? 4 : 8)
                guard let scalar = Unicode.Scalar(v) else { throw fail("escape is not a scalar") }
                out.append(scalar)
            default: throw fail("unknown escape \\\(e)")
            }
        }
        try expect(String(quote))
        return String(out)
    }

    private mutating func quotedBytes() throws -> [UInt8] {
        let quote = s[i]
        i += 1
        var out: [UInt8] = []
        while let c = peek, c != quote {
            i += 1
            guard c == "\\" else {
                guard c.isASCII else { throw fail("non-ASCII in bytes") }
                out.append(UInt8(c.value))
                continue
            }
            guard let e = peek else { throw fail("dangling backslash") }
            i += 1
            switch e {
            case "\\", "'", "\"": out.append(UInt8(e.value))
            case "n": out.append(0x0A)
            case "r": out.append(0x0D)
            case "t": out.append(0x09)
            case "x": out.append(UInt8(try hexEscape(2)))
            default: throw fail("unknown escape \\\(e)")
            }
        }
        try expect(String(quote))
        return out
    }
}
