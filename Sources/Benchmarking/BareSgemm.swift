import Foundation
import Tensor

/// A bare SGEMM with all threads inside OpenBLAS, on operands of its own: the reference rate the
/// reports set the library's kernels against (`ConvolutionReport`, `TensorReport`).
struct BareSgemm {
    let m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool
    let a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>

    /// Row-major `C[m, n] = op(A) . op(B)` with inner dimension `k`, on freshly filled operands.
    init(m: Int, n: Int, k: Int, transposeA: Bool = false, transposeB: Bool = false) {
        self.m = m; self.n = n; self.k = k; self.transposeA = transposeA; self.transposeB = transposeB
        a = filledBuffer(m * k, seed: 4)
        b = filledBuffer(k * n, seed: 5)
        c = filledBuffer(m * n, seed: 6)
    }

    /// Multiply-adds times two of one call.
    var flops: Double { 2 * Double(m) * Double(n) * Double(k) }

    /// One call on `Threads.count` OpenBLAS threads. Call `waitForIdleWorkers()` before timing
    /// anything else.
    func run() {
        Threads.withBLASThreads {
            Gemm.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, b: b, c: c)
        }
    }

    /// Frees the operands.
    func deallocate() { a.deallocate(); b.deallocate(); c.deallocate() }

    /// After a multi-threaded OpenBLAS call its idle workers spin for about 0.1 s and would take a
    /// core from the next measurement (docs/PERFORMANCE.md, "Threads"): waits that out.
    static func waitForIdleWorkers() {
        if Threads.count > 1 { usleep(250_000) }
    }
}

/// `count` floats in [-0.5, 0.5) from a fixed linear congruential sequence per `seed` (operands
/// whose values do not matter, filled without a generator).
func filledBuffer(_ count: Int, seed: UInt32) -> UnsafeMutablePointer<Float> {
    let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
    var state = seed &* 2654435761 &+ 12345
    for i in 0..<count {
        state = state &* 1664525 &+ 1013904223
        p[i] = Float(state >> 8) / Float(1 << 24) - 0.5
    }
    return p
}
