// A complex number as Python's `complex` carries it over the wire (opcode `T`): two binary64
// parts. Equality and hashing use the bit patterns, so NaNs and signed zeros survive exactly.

/// A complex number with binary64 parts, as carried by ``Value/complex(_:)``.
///
/// Two complex numbers are equal when both parts have identical bit patterns: `nan` equals
/// itself and `-0.0` differs from `0.0`, like the floats of ``Value``. The description is
/// Python's `repr`, such as `(1+2j)` or `2j`.
public struct Complex: Sendable, Hashable, CustomStringConvertible {
    /// The real part.
    public var real: Double
    /// The imaginary part.
    public var imaginary: Double

    /// Creates a complex number from its parts.
    ///
    /// - Parameters:
    ///   - real: The real part.
    ///   - imaginary: The imaginary part.
    public init(real: Double, imaginary: Double) {
        self.real = real
        self.imaginary = imaginary
    }

    /// Compares the bit patterns of both parts.
    ///
    /// - Parameters:
    ///   - lhs: A complex number.
    ///   - rhs: Another complex number.
    /// - Returns: `true` when both parts are bit-for-bit identical.
    public static func == (lhs: Complex, rhs: Complex) -> Bool {
        lhs.real.bitPattern == rhs.real.bitPattern && lhs.imaginary.bitPattern == rhs.imaginary.bitPattern
    }

    /// Hashes the bit patterns of both parts, consistent with `==`.
    ///
    /// - Parameter hasher: The hasher to feed.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(real.bitPattern)
        hasher.combine(imaginary.bitPattern)
    }

    /// Python's `repr` of the number: `(1+2j)`, `(-0+infj)`, or `2j` when the real part is `+0.0`.
    public var description: String {
        let imaginaryText = PythonRepr.floatDigits(imaginary, addDotZero: false)
        if real == 0, real.sign == .plus {
            return imaginaryText + "j"
        }
        let sign = imaginary.isNaN || imaginary.sign == .plus ? "+" : ""
        return "(" + PythonRepr.floatDigits(real, addDotZero: false) + sign + imaginaryText + "j)"
    }
}
