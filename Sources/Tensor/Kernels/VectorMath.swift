/// The 16-lane vector the hand-vectorised kernels (batch norm, activations, pooling, dropout) work in.
///
/// Explicit vectors because Float reductions do not auto-vectorise (that would reassociate the
/// sums) and the exponential needs a vector form to keep ELU memory-bound.
typealias Vector16 = SIMD16<Float>

/// Unaligned loads and stores of `Vector16`, whole or for a tail shorter than 16, and lane-wise math.
enum VectorMath {
    /// The 16 floats at `p` (no alignment needed).
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Vector16 {
        UnsafeRawPointer(p).loadUnaligned(as: Vector16.self)
    }

    /// Writes the 16 lanes of `v` to `p` (no alignment needed).
    @inline(__always) static func store(_ v: Vector16, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector16.self)
    }

    /// The first `count` (< 16) elements at `p`, the other lanes zero.
    @inline(__always) static func loadPartial(_ p: UnsafePointer<Float>, _ count: Int) -> Vector16 {
        var v = Vector16()
        for j in 0..<count { v[j] = p[j] }
        return v
    }

    /// Writes the first `count` (< 16) lanes of `v` to `p`.
    @inline(__always) static func storePartial(_ v: Vector16, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
        for j in 0..<count { p[j] = v[j] }
    }

    /// e^x for each lane (`FastMath.exp`).
    @inline(__always) static func exp(_ input: Vector16) -> Vector16 { FastMath.exp(input) }
}
