import COpenBLAS

/// Row-major single-precision GEMM: C = alpha * op(A) * op(B) + beta * C, with op(A) M x K and
/// op(B) K x N. Leading dimensions default to the packed row-major ones.
///
/// Threads: OpenBLAS stays at one thread (see `Threads`). A GEMM that should use several cores
/// passes `threads:`; its output is then cut into that many column (or row) bands, each computed by
/// a single-threaded `cblas_sgemm` on the library's own threads. OpenBLAS's own thread pool is never
/// woken: its idle workers spin for ~0.1 s after every multi-threaded call and would take a core
/// from whatever runs next (measured in docs/PERFORMANCE.md, "Threads").
/// Every output element is computed by one single-threaded call; results agree across `threads`
/// up to BLAS's rounding (its kernels may order sums differently at band edges).
package enum Gemm {
    /// Products smaller than this many multiply-adds run on one thread even when `threads > 1`.
    @usableFromInline static let splitThreshold = 1 << 21

    /// Calls `cblas_sgemm` (OpenBLAS) in row-major order, on `threads` threads (default 1).
    @inlinable
    package static func sgemm(transposeA: Bool = false, transposeB: Bool = false,
                              m: Int, n: Int, k: Int, alpha: Float = 1,
                              a: UnsafePointer<Float>, lda: Int? = nil,
                              b: UnsafePointer<Float>, ldb: Int? = nil,
                              beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil,
                              threads: Int = 1) {
        if m == 0 || n == 0 { return }
        let lda = lda ?? (transposeA ? m : k)
        let ldb = ldb ?? (transposeB ? k : n)
        let ldc = ldc ?? n
        func call(_ m: Int, _ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) {
            cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
        let parts = Swift.min(threads, Swift.max(m, n) / 16)
        if parts <= 1 || m * n * k < splitThreshold {
            call(m, n, a, b, c)
            return
        }
        // Bands of whole 16-wide panels along the longer output side.
        if n >= m {
            let band = ((n + 15) / 16 + parts - 1) / parts * 16
            Threads.parallelFor(parts) { p in
                let n0 = p * band, n1 = Swift.min(n, n0 + band)
                guard n0 < n1 else { return }
                call(m, n1 - n0, a, b + (transposeB ? n0 * ldb : n0), c + n0)
            }
        } else {
            let band = ((m + 15) / 16 + parts - 1) / parts * 16
            Threads.parallelFor(parts) { p in
                let m0 = p * band, m1 = Swift.min(m, m0 + band)
                guard m0 < m1 else { return }
                call(m1 - m0, n, a + (transposeA ? m0 : m0 * lda), b, c + m0 * ldc)
            }
        }
    }
}
