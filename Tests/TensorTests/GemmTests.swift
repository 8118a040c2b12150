@testable import Tensor
import XCTest

/// `Gemm.sgemm(threads:)` cuts the output into bands computed by single-threaded SGEMMs on our own
/// threads. Checked against a plain triple loop in Double for every transpose combination, odd
/// extents, padded leading dimensions and beta = 1.
final class GemmTests: XCTestCase {
    func testSplitGemmMatchesReference() {
        var rng = SeededGenerator(seed: 31)
        // (m, n, k): wide (split by columns), tall (split by rows), odd extents not multiples of 16.
        let shapes = [(37, 701, 129), (290, 23, 341), (160, 160, 90), (17, 1000, 200)]
        for (m, n, k) in shapes {
            XCTAssertGreaterThanOrEqual(m * n * k, Gemm.splitThreshold, "too small to be split")
            for ta in [false, true] {
                for tb in [false, true] {
                    for beta: Float in [0, 1] {
                        let lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 7
                        let a = (0..<((ta ? k : m) * lda)).map { _ in Float.random(in: -1...1, using: &rng) }
                        let b = (0..<((tb ? n : k) * ldb)).map { _ in Float.random(in: -1...1, using: &rng) }
                        let c0 = (0..<(m * ldc)).map { _ in Float.random(in: -1...1, using: &rng) }
                        var expected = c0
                        for i in 0..<m {
                            for j in 0..<n {
                                var s = 0.0
                                for p in 0..<k {
                                    let av = ta ? a[p * lda + i] : a[i * lda + p]
                                    let bv = tb ? b[j * ldb + p] : b[p * ldb + j]
                                    s += Double(av) * Double(bv)
                                }
                                expected[i * ldc + j] = Float(s * 0.5 + Double(beta) * Double(c0[i * ldc + j]))
                            }
                        }
                        var results: [[Float]] = []
                        for threads in [1, 2, 3] {
                            var c = c0
                            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                                withThreads(threads) {
                                    Gemm.sgemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.5,
                                               a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb,
                                               beta: beta, c: cp.baseAddress!, ldc: ldc, threads: threads)
                                }
                            } } }
                            var worst: Float = 0
                            for i in 0..<m { for j in 0..<n { worst = max(worst, abs(c[i * ldc + j] - expected[i * ldc + j])) } }
                            XCTAssertLessThan(worst, 1e-4, "m \(m) n \(n) k \(k) ta \(ta) tb \(tb) beta \(beta) threads \(threads)")
                            // Padding between rows of C is never written.
                            for i in 0..<m { for j in n..<ldc { XCTAssertEqual(c[i * ldc + j], c0[i * ldc + j]) } }
                            results.append(c)
                        }
                        // Splits agree with one thread up to BLAS's rounding at band edges.
                        for t in 1...2 {
                            let diff = zip(results[0], results[t]).map { abs($0 - $1) }.max() ?? 0
                            XCTAssertLessThan(diff, 1e-5, "threads 1 vs \(t + 1): m \(m) n \(n) k \(k) ta \(ta) tb \(tb)")
                        }
                    }
                }
            }
        }
    }
}
