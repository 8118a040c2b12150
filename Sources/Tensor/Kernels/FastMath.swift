/// Branch-free float approximations that inline and vectorize, unlike calls into libm. The scalar
/// and the 16-lane forms evaluate the same scheme with the same constants, so they agree exactly.
public enum FastMath {
    // e^x = 2^n * e^r with n = round(x / ln2) and r = x - n ln2 (ln2 split in two for accuracy),
    // as Cephes' expf reduces it; e^r = 1 + r + r^2 q(r) with q a cubic fitted for minimax relative
    // error on [-ln2/2, ln2/2] (our own Lawson fit, 1.6e-7 in float arithmetic): the shortest
    // polynomial that meets 2e-7, because ELU's cost is these multiply-adds (docs/PERFORMANCE.md).
    // Adding 1.5 * 2^23 rounds to the nearest integer and leaves it in the low mantissa bits, with
    // no libm call or trapping Float -> Int conversion.
    @usableFromInline static let lowerBound: Float = -87.3
    @usableFromInline static let upperBound: Float = 88.3
    @usableFromInline static let log2e: Float = 1.442_695_04
    @usableFromInline static let ln2High: Float = 0.693_359_375
    @usableFromInline static let ln2Low: Float = -2.121_944_40e-4
    @usableFromInline static let magic: Float = 12_582_912
    @usableFromInline static let c2: Float = 0.499_992_3
    @usableFromInline static let c3: Float = 0.166_671_14
    @usableFromInline static let c4: Float = 0.041_890_11
    @usableFromInline static let c5: Float = 0.008_312_53

    /// e^x with a relative error below 2e-7; inputs are clamped to [-87.3, 88.3], so the result
    /// stays finite and normal. NaN propagates.
    @inlinable @inline(__always)
    public static func exp(_ input: Float) -> Float {
        let x = Swift.min(Swift.max(input, lowerBound), upperBound)
        let t = x * log2e + magic
        let n = t - magic
        let r = x - n * ln2High - n * ln2Low
        var p = c5
        p = p * r + c4
        p = p * r + c3
        p = p * r + c2
        p = p * (r * r) + r + 1
        let exponent = t.bitPattern &- magic.bitPattern
        return input.isNaN ? input : p * Float(bitPattern: (exponent &+ 127) &<< 23)
    }

    /// e^x for each lane; the same scheme as the scalar `exp`.
    @inlinable @inline(__always)
    public static func exp(_ input: SIMD16<Float>) -> SIMD16<Float> {
        // pointwiseMin/Max are scalarized on SIMD16 (SWIFT_NOTES.md); `replacing` is not.
        var x = input.replacing(with: lowerBound, where: input .< lowerBound)
        x = x.replacing(with: upperBound, where: x .> upperBound)
        let t = x * log2e + magic
        let n = t - magic
        let r = x - n * ln2High - n * ln2Low
        var p = SIMD16<Float>(repeating: c5)
        p = p * r + c4
        p = p * r + c3
        p = p * r + c2
        p = p * (r * r) + r + 1
        let exponent = unsafeBitCast(t, to: SIMD16<Int32>.self) &- Int32(bitPattern: magic.bitPattern)
        return p * unsafeBitCast((exponent &+ 127) &<< 23, to: SIMD16<Float>.self)
    }
}
