// An exact arbitrary-precision integer for the values Python sends that do not fit `Int64`.
// Kept as a sign and a magnitude in base-10⁹ limbs, so decimal parsing and rendering (the only
// wire form of big integers, opcode `H`) are linear. Also the decimal parser the decoder uses.

/// An exact integer of any size, as carried by ``Value/bigInt(_:)``.
///
/// Stored as a sign and a magnitude in base 10⁹ limbs (least significant first, no leading
/// zero limbs, zero is never negative), so equal numbers have equal representations and the
/// synthesized `Hashable` is exact. Only what the serializer needs is provided: construction
/// from binary integers, parsing and printing decimal text, comparison, and exact conversion
/// back to `Int64`/`UInt64`. It is not an arithmetic library.
public struct BigInteger: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The largest number of decimal digits accepted when parsing, as Python's
    /// `sys.get_int_max_str_digits()` default (4,300). Longer text is a ``SerializerError/Code/tooLarge`` error.
    public static let maximumDecimalDigits = 4300

    static let limbBase: UInt64 = 1_000_000_000
    static let limbDigits = 9

    /// Whether the number is below zero. Always `false` for zero.
    public let isNegative: Bool
    /// Magnitude, base 10⁹, least significant limb first; empty for zero.
    let limbs: [UInt32]

    init(isNegative: Bool, limbs: [UInt32]) {
        var limbs = limbs
        while let last = limbs.last, last == 0 { limbs.removeLast() }
        self.limbs = limbs
        self.isNegative = isNegative && !limbs.isEmpty
    }

    /// Creates the integer equal to a binary integer of any width.
    ///
    /// - Parameter value: The integer to represent exactly.
    public init(_ value: some BinaryInteger) {
        if let small = Int64(exactly: value) {
            self.init(magnitude: small.magnitude, isNegative: small < 0)
        } else if let small = UInt64(exactly: value) {
            self.init(magnitude: small, isNegative: false)
        } else {
            self.init(wideMagnitude: value.magnitude, isNegative: value < 0)
        }
    }

    private init(magnitude: UInt64, isNegative: Bool) {
        var limbs: [UInt32] = []
        var rest = magnitude
        while rest != 0 {
            limbs.append(UInt32(rest % Self.limbBase))
            rest /= Self.limbBase
        }
        self.init(isNegative: isNegative, limbs: limbs)
    }

    private init<M: BinaryInteger>(wideMagnitude: M, isNegative: Bool) {
        // Binary words → 32-bit chunks (most significant first), then repeated division by 10⁹.
        var chunks: [UInt32] = []
        for word in wideMagnitude.words.reversed() {
            var w = UInt64(word)
            var parts: [UInt32] = []
            for _ in 0..<(UInt.bitWidth / 32) {
                parts.append(UInt32(truncatingIfNeeded: w))
                w >>= 32
            }
            chunks.append(contentsOf: parts.reversed())
        }
        var limbs: [UInt32] = []
        while chunks.contains(where: { $0 != 0 }) {
            var remainder: UInt64 = 0
            for i in chunks.indices {
                let current = (remainder << 32) | UInt64(chunks[i])
                chunks[i] = UInt32(current / Self.limbBase)
                remainder = current % Self.limbBase
            }
            limbs.append(UInt32(remainder))
        }
        self.init(isNegative: isNegative, limbs: limbs)
    }

    /// Parses decimal text the way Python's `int(text)` does in base 10.
    ///
    /// Surrounding ASCII whitespace is ignored, one leading `+` or `-` is allowed, and single
    /// `_` separators may stand between digits (`" -1_000 "` is −1000). Leading zeros are allowed.
    /// Only ASCII digits are accepted.
    ///
    /// - Parameter text: The decimal text.
    /// - Throws: ``SerializerError`` with code ``SerializerError/Code/invalidInteger`` when the
    ///   text is not a decimal integer, or ``SerializerError/Code/tooLarge`` when it has more than
    ///   ``maximumDecimalDigits`` digits.
    public init(parsing text: some StringProtocol) throws(SerializerError) {
        var text = String(text)
        let parsed = text.withUTF8 { DecimalText.scan($0) }
        switch parsed {
        case .failure(let error): throw error
        case .success(let scan): self = text.withUTF8 { scan.bigInteger(in: $0) }
        }
    }

    /// Whether the number is zero.
    public var isZero: Bool { limbs.isEmpty }

    /// The number as an `Int64`, or `nil` when it does not fit.
    public var int64Value: Int64? {
        guard let magnitude = magnitude64 else { return nil }
        if isNegative {
            if magnitude == UInt64(Int64.max) + 1 { return Int64.min }
            return magnitude <= UInt64(Int64.max) ? -Int64(magnitude) : nil
        }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
    }

    /// The number as a `UInt64`, or `nil` when it is negative or does not fit.
    public var uint64Value: UInt64? {
        isNegative ? nil : magnitude64
    }

    private var magnitude64: UInt64? {
        guard limbs.count <= 3 else { return nil }
        var result: UInt64 = 0
        for limb in limbs.reversed() {
            let (shifted, o1) = result.multipliedReportingOverflow(by: Self.limbBase)
            let (sum, o2) = shifted.addingReportingOverflow(UInt64(limb))
            if o1 || o2 { return nil }
            result = sum
        }
        return result
    }

    /// The number of decimal digits of the magnitude (1 for zero).
    public var decimalDigitCount: Int {
        guard let top = limbs.last else { return 1 }
        var digits = 1
        var t = top
        while t >= 10 { t /= 10; digits += 1 }
        return (limbs.count - 1) * Self.limbDigits + digits
    }

    /// The number with its sign flipped.
    ///
    /// - Returns: `-self`.
    public func negated() -> BigInteger {
        BigInteger(isNegative: !isNegative, limbs: limbs)
    }

    /// The decimal text of the number: an optional `-`, then the digits without leading zeros.
    public var description: String {
        var out: [UInt8] = []
        appendDecimal(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the decimal ASCII text of the number (as ``description``) to a byte buffer.
    func appendDecimal(to out: inout [UInt8]) {
        guard let top = limbs.last else {
            out.append(UInt8(ascii: "0"))
            return
        }
        out.reserveCapacity(out.count + decimalDigitCount + 1)
        if isNegative { out.append(UInt8(ascii: "-")) }
        var head: [UInt8] = []
        var t = top
        repeat {
            head.append(UInt8(ascii: "0") + UInt8(t % 10))
            t /= 10
        } while t != 0
        out.append(contentsOf: head.reversed())
        for limb in limbs.dropLast().reversed() {
            let first = out.count
            out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: Self.limbDigits))
            var v = limb
            var i = first + Self.limbDigits
            while v != 0 {
                i -= 1
                out[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            }
        }
    }

    /// Orders two integers numerically.
    ///
    /// - Parameters:
    ///   - lhs: An integer.
    ///   - rhs: Another integer.
    /// - Returns: `true` when `lhs` is less than `rhs`.
    public static func < (lhs: BigInteger, rhs: BigInteger) -> Bool {
        if lhs.isNegative != rhs.isNegative { return lhs.isNegative }
        let magnitudeLess = Self.magnitudeLess(lhs.limbs, rhs.limbs)
        let magnitudeGreater = Self.magnitudeLess(rhs.limbs, lhs.limbs)
        return lhs.isNegative ? magnitudeGreater : magnitudeLess
    }

    private static func magnitudeLess(_ a: [UInt32], _ b: [UInt32]) -> Bool {
        if a.count != b.count { return a.count < b.count }
        for i in stride(from: a.count - 1, through: 0, by: -1) where a[i] != b[i] {
            return a[i] < b[i]
        }
        return false
    }
}

/// The result of scanning Python-style decimal integer text: where the digits are and the sign.
/// Scanning validates without allocating; building the number is a second, cheap pass.
struct DecimalText {
    var isNegative: Bool
    var digitCount: Int
    /// Range of the text between the sign and the trailing whitespace (digits and underscores).
    var start: Int
    var end: Int
    var hasUnderscores: Bool

    private static func isSpace(_ c: UInt8) -> Bool {
        c == 0x20 || (c >= 0x09 && c <= 0x0D)
    }

    private static func isDigit(_ c: UInt8) -> Bool {
        c &- UInt8(ascii: "0") < 10
    }

    /// Validates `text` as Python's base-10 `int()` would.
    static func scan(_ text: UnsafeBufferPointer<UInt8>) -> Result<DecimalText, SerializerError> {
        var start = 0
        var end = text.count
        while start < end, isSpace(text[start]) { start += 1 }
        while end > start, isSpace(text[end - 1]) { end -= 1 }
        var isNegative = false
        if start < end, text[start] == UInt8(ascii: "-") || text[start] == UInt8(ascii: "+") {
            isNegative = text[start] == UInt8(ascii: "-")
            start += 1
        }
        guard start < end else {
            return .failure(SerializerError(.invalidInteger, "invalid integer text: no digits"))
        }
        var digitCount = 0
        var hasUnderscores = false
        var previousWasDigit = false
        for i in start..<end {
            let c = text[i]
            if isDigit(c) {
                digitCount += 1
                previousWasDigit = true
            } else if c == UInt8(ascii: "_"), previousWasDigit, i + 1 < end, isDigit(text[i + 1]) {
                hasUnderscores = true
                previousWasDigit = false
            } else {
                return .failure(SerializerError(.invalidInteger, "invalid integer text: unexpected byte 0x\(String(c, radix: 16)) at \(i)"))
            }
        }
        if digitCount > BigInteger.maximumDecimalDigits {
            return .failure(SerializerError(.tooLarge, "integer text has \(digitCount) digits, more than the limit of \(BigInteger.maximumDecimalDigits)"))
        }
        return .success(DecimalText(isNegative: isNegative, digitCount: digitCount, start: start, end: end, hasUnderscores: hasUnderscores))
    }

    /// The integer the scanned text spells, normalized: `.int` when it fits `Int64`.
    func value(in text: UnsafeBufferPointer<UInt8>) -> Value {
        if digitCount <= 18 {
            var magnitude: Int64 = 0
            for i in start..<end where text[i] != UInt8(ascii: "_") {
                magnitude = magnitude &* 10 &+ Int64(text[i] &- UInt8(ascii: "0"))
            }
            return .int(isNegative ? -magnitude : magnitude)
        }
        let big = bigInteger(in: text)
        if let small = big.int64Value { return .int(small) }
        return .bigInt(big)
    }

    /// The integer the scanned text spells, as a ``BigInteger``.
    func bigInteger(in text: UnsafeBufferPointer<UInt8>) -> BigInteger {
        var limbs: [UInt32] = []
        limbs.reserveCapacity(digitCount / BigInteger.limbDigits + 1)
        var limb: UInt32 = 0
        var scale: UInt32 = 1
        var i = end
        while i > start {
            i -= 1
            let c = text[i]
            if c == UInt8(ascii: "_") { continue }
            limb += UInt32(c &- UInt8(ascii: "0")) * scale
            scale *= 10
            if scale == UInt32(BigInteger.limbBase) {
                limbs.append(limb)
                limb = 0
                scale = 1
            }
        }
        if scale != 1 { limbs.append(limb) }
        return BigInteger(isNegative: isNegative, limbs: limbs)
    }
}
