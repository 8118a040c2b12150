/// Branch-free float approximations that inline and vectorize, unlike calls into libm.
public enum FastMath {
    /// e^x with a relative error below 2e-7 on [-87, 88]; 0 below, +inf above.
    ///
    /// Cody-Waite range reduction x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r,
    /// and the exponent bits set directly for 2^n.
    @inlinable @inline(__always)
    public static func exp(_ x: Float) -> Float {
        let clamped = Swift.min(Swift.max(x, -87.3), 88.7)
        // Adding 1.5 * 2^23 rounds to the nearest integer and leaves it in the low mantissa bits,
        // without a libm call or a trapping Float -> Int conversion, so the loop vectorizes.
        let magic: Float = 12_582_912
        let shifted = clamped * 1.442_695_04 + magic
        let n = shifted - magic
        let r = (clamped - n * 0.693_145_75) - n * 1.428_606_8e-6
        var p: Float = 1.987_569_1e-4
        p = p * r + 1.398_199_9e-3
        p = p * r + 8.333_452e-3
        p = p * r + 4.166_579_6e-2
        p = p * r + 0.166_666_66
        p = p * r + 0.5
        p = p * r * r + r + 1
        let exponent = shifted.bitPattern &- magic.bitPattern  // n as a two's-complement integer
        let scale = Float(bitPattern: (exponent &+ 127) &<< 23)
        let result = p * scale
        return x < -87.3 ? 0 : (x > 88.7 ? .infinity : result)
    }
}
