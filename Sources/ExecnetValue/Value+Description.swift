// The Python-like `repr` of values: `None`, `True`, `1.5`, `b'\x00'`, `'é'`, `(1,)`,
// `{'k': v}`, `frozenset({1})`, `<Channel id=3>`. Floats, strings and bytes follow CPython's
// rules exactly, so a value printed here reads as it would in a Python session.

extension Value: CustomStringConvertible, CustomDebugStringConvertible {
    /// Python's `repr` of the value, such as `[1, 'a', None]` or `{(1, 2): b'x'}`.
    ///
    /// Floats use Python's shortest round-trip form (`1e+16`, `0.1`, `-0.0`, `inf`, `nan`),
    /// strings and bytes use Python's quoting and escapes. Set members appear in the set's
    /// iteration order, which is unspecified.
    public var description: String {
        var out = ""
        PythonRepr.append(self, to: &out)
        return out
    }

    /// The same as ``description``.
    public var debugDescription: String { description }
}

/// Python `repr` formatting helpers.
enum PythonRepr {
    static func append(_ value: Value, to out: inout String) {
        switch value {
        case .none: out += "None"
        case .bool(let b): out += b ? "True" : "False"
        case .int(let i): out += String(i)
        case .bigInt(let b): out += b.description
        case .float(let d): out += floatDigits(d, addDotZero: true)
        case .complex(let c): out += c.description
        case .bytes(let b): appendBytes(b, to: &out)
        case .string(let s): appendString(s, to: &out)
        case .list(let items):
            out += "["
            appendItems(items, to: &out)
            out += "]"
        case .tuple(let items):
            out += "("
            appendItems(items, to: &out)
            if items.count == 1 { out += "," }
            out += ")"
        case .dict(let d):
            out += "{"
            var first = true
            for (k, v) in d {
                if !first { out += ", " }
                first = false
                append(k, to: &out)
                out += ": "
                append(v, to: &out)
            }
            out += "}"
        case .set(let s):
            if s.isEmpty {
                out += "set()"
            } else {
                out += "{"
                appendItems(s, to: &out)
                out += "}"
            }
        case .frozenSet(let s):
            if s.isEmpty {
                out += "frozenset()"
            } else {
                out += "frozenset({"
                appendItems(s, to: &out)
                out += "})"
            }
        case .channel(let c):
            out += "<Channel id=\(c.id)>"
        case .channelReference(let id):
            out += "<Channel id=\(id)>"
        }
    }

    private static func appendItems(_ items: some Sequence<Value>, to out: inout String) {
        var first = true
        for item in items {
            if !first { out += ", " }
            first = false
            append(item, to: &out)
        }
    }

    /// Python's `repr` of a float (`addDotZero: true`) or of a complex part (`false`: `1`, not `1.0`).
    static func floatDigits(_ d: Double, addDotZero: Bool) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        // Swift's description is the shortest round-trip digit string, as Python's repr;
        // only the layout differs. Extract digits and decimal exponent, then lay out as CPython.
        let text = Array(d.magnitude.description.utf8)
        var digits: [UInt8] = []
        var exponent = 0
        var pointSeen = false
        var integerDigits = 0
        var i = 0
        while i < text.count {
            let c = text[i]
            if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                exponent = Int(String(decoding: text[(i + 1)...], as: UTF8.self)) ?? 0
                break
            } else if c == UInt8(ascii: ".") {
                pointSeen = true
            } else {
                digits.append(c)
                if !pointSeen { integerDigits += 1 }
            }
            i += 1
        }
        // value = 0.d1d2…dn × 10^decpt
        var decpt = integerDigits + exponent
        while let first = digits.first, first == UInt8(ascii: "0") {
            digits.removeFirst()
            decpt -= 1
        }
        while let last = digits.last, last == UInt8(ascii: "0") { digits.removeLast() }
        if digits.isEmpty {
            digits = [UInt8(ascii: "0")]
            decpt = 1
        }
        var out: [UInt8] = d.sign == .minus ? [UInt8(ascii: "-")] : []
        if decpt <= -4 || decpt > 16 {
            out.append(digits[0])
            if digits.count > 1 {
                out.append(UInt8(ascii: "."))
                out.append(contentsOf: digits[1...])
            }
            let e = decpt - 1
            out.append(UInt8(ascii: "e"))
            out.append(e < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
            let magnitude = e.magnitude
            if magnitude < 10 { out.append(UInt8(ascii: "0")) }
            out.append(contentsOf: String(magnitude).utf8)
        } else if decpt <= 0 {
            out.append(contentsOf: "0.".utf8)
            out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: -decpt))
            out.append(contentsOf: digits)
        } else if digits.count <= decpt {
            out.append(contentsOf: digits)
            out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: decpt - digits.count))
            if addDotZero { out.append(contentsOf: ".0".utf8) }
        } else {
            out.append(contentsOf: digits[..<decpt])
            out.append(UInt8(ascii: "."))
            out.append(contentsOf: digits[decpt...])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private static func appendHex(_ value: UInt32, width: Int, to out: inout String) {
        var chars: [UInt8] = []
        for shift in stride(from: (width - 1) * 4, through: 0, by: -4) {
            chars.append(hexDigits[Int((value >> UInt32(shift)) & 0xF)])
        }
        out += String(decoding: chars, as: UTF8.self)
    }

    /// Python's `repr` of a byte string: `b'…'`, or `b"…"` when it holds `'` but no `"`.
    static func appendBytes(_ bytes: [UInt8], to out: inout String) {
        let quote: UInt8 = bytes.contains(UInt8(ascii: "'")) && !bytes.contains(UInt8(ascii: "\""))
            ? UInt8(ascii: "\"") : UInt8(ascii: "'")
        out += "b"
        out.unicodeScalars.append(Unicode.Scalar(quote))
        for b in bytes {
            switch b {
            case quote, UInt8(ascii: "\\"):
                out += "\\"
                out.unicodeScalars.append(Unicode.Scalar(b))
            case UInt8(ascii: "\t"): out += "\\t"
            case UInt8(ascii: "\n"): out += "\\n"
            case UInt8(ascii: "\r"): out += "\\r"
            case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                out += "\\x"
                appendHex(UInt32(b), width: 2, to: &out)
            }
        }
        out.unicodeScalars.append(Unicode.Scalar(quote))
    }

    /// Python's `repr` of a text string, escaping what `str.isprintable()` rejects.
    static func appendString(_ string: String, to out: inout String) {
        let quote: Unicode.Scalar = string.contains("'") && !string.contains("\"") ? "\"" : "'"
        out.unicodeScalars.append(quote)
        for scalar in string.unicodeScalars {
            switch scalar {
            case quote, "\\":
                out += "\\"
                out.unicodeScalars.append(scalar)
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default:
                if isPrintable(scalar) {
                    out.unicodeScalars.append(scalar)
                } else if scalar.value < 0x100 {
                    out += "\\x"
                    appendHex(scalar.value, width: 2, to: &out)
                } else if scalar.value < 0x10000 {
                    out += "\\u"
                    appendHex(scalar.value, width: 4, to: &out)
                } else {
                    out += "\\U"
                    appendHex(scalar.value, width: 8, to: &out)
                }
            }
        }
        out.unicodeScalars.append(quote)
    }

    /// CPython's `Py_UNICODE_ISPRINTABLE`: not in categories Cc, Cf, Cs, Co, Cn, Zl, Zp, Zs
    /// (the space itself is printable).
    private static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 0x7F { return scalar.value >= 0x20 }
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned,
             .lineSeparator, .paragraphSeparator, .spaceSeparator:
            return false
        default:
            return true
        }
    }
}
