extension Tensor {
    /// Matrix product of `[M, K] x [K, N]`, or batched `[B, M, K] x [B, K, N]` (a 2-D operand is
    /// shared across the batch). Runs on OpenBLAS SGEMM, split over `Threads.count` threads.
    public static func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition((a.rank == 2 || a.rank == 3) && (b.rank == 2 || b.rank == 3),
                     "matmul: operands must be 2-D or 3-D, got \(a.shape) and \(b.shape)")
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1]
        let k2 = b.shape[b.rank - 2], n = b.shape[b.rank - 1]
        precondition(k == k2, "matmul: inner extents differ in \(a.shape) x \(b.shape)")
        let batchA = a.rank == 3 ? a.shape[0] : 1, batchB = b.rank == 3 ? b.shape[0] : 1
        precondition(batchA == batchB || batchA == 1 || batchB == 1 || (a.rank == 2 || b.rank == 2),
                     "matmul: batch extents differ in \(a.shape) x \(b.shape)")
        let batch = Swift.max(batchA, batchB)
        let outShape = (a.rank == 3 || b.rank == 3) ? [batch, m, n] : [m, n]
        var y = Tensor(uninitializedShape: outShape)
        let ap = a.storage.pointer, bp = b.storage.pointer, cp = y.storage.pointer
        let strideA = batchA == 1 ? 0 : m * k, strideB = batchB == 1 ? 0 : k * n
        let threads = Threads.count
        for i in 0..<batch {
            Gemm.sgemm(m: m, n: n, k: k, a: ap + i * strideA, b: bp + i * strideB, c: cp + i * m * n, threads: threads)
        }
        if let needs = gradientNeeds(a, b) {
            let av = a.detached, bv = b.detached
            y.recordOp("matmul", profiledAs: .elementwiseBackward, inputs: [a, b]) { g in
                // dA = g . B^T, dB = A^T . g, summed over the batch where an operand was shared.
                var da: Tensor? = nil, db: Tensor? = nil
                if needs[0] {
                    let d = Tensor(repeating: 0, shape: av.shape)
                    for i in 0..<batch {
                        Gemm.sgemm(transposeB: true, m: m, n: k, k: n, a: g.storage.pointer + i * m * n,
                                   b: bv.storage.pointer + i * strideB, beta: strideA == 0 ? 1 : 0,
                                   c: d.storage.pointer + i * strideA, threads: threads)
                    }
                    da = d
                }
                if needs[1] {
                    let d = Tensor(repeating: 0, shape: bv.shape)
                    for i in 0..<batch {
                        Gemm.sgemm(transposeA: true, m: k, n: n, k: m, a: av.storage.pointer + i * strideA,
                                   b: g.storage.pointer + i * m * n, beta: strideB == 0 ? 1 : 0,
                                   c: d.storage.pointer + i * strideB, threads: threads)
                    }
                    db = d
                }
                return [da, db]
            }
        }
        return y
    }
}

/// Matrix product; see `Tensor.matmul`.
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor { Tensor.matmul(a, b) }
