#if canImport(Glibc)
import Glibc
#endif

extension Tensor {
    /// log(softmax(x)) along `axis`, computed stably as x - max - log(sum(exp(x - max))).
    public func logSoftmax(alongAxis axis: Int = -1) -> Tensor { softmax(alongAxis: axis, logarithm: true, "logSoftmax") }

    /// softmax along `axis`.
    public func softmax(alongAxis axis: Int = -1) -> Tensor { softmax(alongAxis: axis, logarithm: false, "softmax") }

    /// softmax (or its logarithm) along `axis`: both shift by the line's maximum, then
    /// - softmax: e^(x - max) / sum, backward dx = y * (g - sum(g * y));
    /// - log: x - max - log(sum), backward dx = g - e^y * sum(g).
    private func softmax(alongAxis axis: Int, logarithm: Bool, _ op: String) -> Tensor {
        let a = normalizedAxis(axis, op)
        let (outer, extent, inner) = split(around: a)
        var y = Tensor(uninitializedShape: shape)
        let x = storage.pointer, p = y.storage.pointer
        // Each line along the axis starts at `base` and steps by `inner`.
        func forEachLine(_ body: (Int) -> Void) {
            for o in 0..<outer { for i in 0..<inner { body(o * extent * inner + i) } }
        }
        forEachLine { base in
            var m = -Float.infinity
            for j in 0..<extent { m = Swift.max(m, x[base + j * inner]) }
            var s: Float = 0
            if logarithm {
                for j in 0..<extent { s += expf(x[base + j * inner] - m) }
                let lse = m + logf(s)
                for j in 0..<extent { p[base + j * inner] = x[base + j * inner] - lse }
            } else {
                for j in 0..<extent { let e = expf(x[base + j * inner] - m); p[base + j * inner] = e; s += e }
                let r = 1 / s
                for j in 0..<extent { p[base + j * inner] *= r }
            }
        }
        if Tensor.gradientNeeds(self) != nil {
            let yv = y.detached
            y.recordOp(op, profiledAs: .lossBackward, inputs: [self]) { g in
                let dx = Tensor(uninitializedShape: yv.shape)
                let gp = g.storage.pointer, yp = yv.storage.pointer, dp = dx.storage.pointer
                forEachLine { base in
                    var s: Float = 0
                    if logarithm {
                        for j in 0..<extent { s += gp[base + j * inner] }
                        for j in 0..<extent { let k = base + j * inner; dp[k] = gp[k] - expf(yp[k]) * s }
                    } else {
                        for j in 0..<extent { s += gp[base + j * inner] * yp[base + j * inner] }
                        for j in 0..<extent { let k = base + j * inner; dp[k] = yp[k] * (gp[k] - s) }
                    }
                }
                return [dx]
            }
        }
        return y
    }
}

/// Softmax cross-entropy of `[N, C, H, W]` logits (or `[N, C]`) against integer class targets
/// `[N, H, W]` (or `[N]`) stored as Float.
///
/// - Parameters:
///   - weights: optional per-pixel weights, shape of `targets`; each pixel's loss is multiplied by it.
///   - mask: optional per-pixel mask, shape of `targets`; pixels with mask 0 are ignored.
/// - Returns: the mean loss over counted pixels, `sum(w * -log p[target]) / countedPixels`
///   (as PyTorch's `reduction="mean"` with per-pixel weights folded in, and ignored pixels not counted).
///   A target outside `0..<C` stops with a message: validate user labels before calling.
public func softmaxCrossEntropy(logits: Tensor, targets: Tensor, weights: Tensor? = nil, mask: Tensor? = nil) -> Tensor {
    OpProfiler.measure(.lossForward) {
        precondition(logits.rank >= 2, "softmaxCrossEntropy: logits must be [N, C, ...], got \(logits.shape)")
        let n = logits.shape[0], c = logits.shape[1]
        let spatial = Array(logits.shape[2...])
        let inner = spatial.reduce(1, *)
        precondition(targets.shape == [n] + spatial,
                     "softmaxCrossEntropy: targets shape \(targets.shape) does not match logits \(logits.shape) (expected \([n] + spatial))")
        if let weights { precondition(weights.shape == targets.shape, "softmaxCrossEntropy: weights shape \(weights.shape) differs from targets \(targets.shape)") }
        if let mask { precondition(mask.shape == targets.shape, "softmaxCrossEntropy: mask shape \(mask.shape) differs from targets \(targets.shape)") }
        let x = logits.storage.pointer, t = targets.storage.pointer
        let wp = weights?.storage.pointer, mp = mask?.storage.pointer
        // Per pixel: probabilities are needed for the gradient; keep them in one buffer of the logits' shape.
        let probabilities = Tensor(uninitializedShape: logits.shape)
        let pp = probabilities.storage.pointer
        // Pixels in chunks fixed by the size alone, run over the threads; each chunk's loss sum and
        // count are combined in chunk order, so the result does not depend on the thread count.
        let pixels = n * inner
        let chunks = Swift.max(1, Swift.min(16, pixels / (1 << 14)))
        var partialTotals = [Double](repeating: 0, count: chunks), partialCounts = [Int](repeating: 0, count: chunks)
        partialTotals.withUnsafeMutableBufferPointer { totals in
            partialCounts.withUnsafeMutableBufferPointer { counts in
                let totals = totals.baseAddress!, counts = counts.baseAddress!
                Threads.parallelFor(chunks) { chunk in
                    var total: Double = 0
                    var counted = 0
                    let lo = chunk * pixels / chunks
                    var img = lo / inner, i = lo - img * inner
                    for pixel in lo..<((chunk + 1) * pixels / chunks) {
                        defer { i += 1; if i == inner { i = 0; img += 1 } }
                        let base = img * c * inner
                        var m = -Float.infinity
                        for j in 0..<c { m = max(m, x[base + j * inner + i]) }
                        var s: Float = 0
                        for j in 0..<c { let e = FastMath.exp(x[base + j * inner + i] - m); pp[base + j * inner + i] = e; s += e }
                        let r = 1 / s
                        for j in 0..<c { pp[base + j * inner + i] *= r }
                        if let mp, mp[pixel] == 0 { continue }
                        let target = Int(exactly: t[pixel]) ?? -1
                        precondition(target >= 0 && target < c,
                                     "softmaxCrossEntropy: target \(t[pixel]) at pixel \(pixel) is not a class in 0..<\(c)")
                        let logp = x[base + target * inner + i] - m - logf(s)
                        total += Double(-logp * (wp?[pixel] ?? 1))
                        counted += 1
                    }
                    totals[chunk] = total
                    counts[chunk] = counted
                }
            }
        }
        let total = partialTotals.reduce(0, +), counted = partialCounts.reduce(0, +)
        var loss = Tensor(Float(total / Double(max(counted, 1))))
        if Tensor.gradientNeeds(logits) != nil {
            let scale = 1 / Float(max(counted, 1))
            let targetsValue = targets.detached, weightsValue = weights?.detached, maskValue = mask?.detached
            loss.recordOp("softmaxCrossEntropy", profiledAs: .lossBackward, inputs: [logits]) { g in
                // d/dx_j = w * (p_j - [j == target]) / counted
                let dx = Tensor(uninitializedShape: probabilities.shape)
                let dp = dx.storage.pointer, tp = targetsValue.storage.pointer
                let wp = weightsValue?.storage.pointer, mp = maskValue?.storage.pointer
                let gs = g.scalar * scale
                Threads.parallelRanges(n * inner, minimumChunk: 1 << 14) { range in
                    var img = range.lowerBound / inner, i = range.lowerBound - img * inner
                    for pixel in range {
                        defer { i += 1; if i == inner { i = 0; img += 1 } }
                        let base = img * c * inner
                        if let mp, mp[pixel] == 0 {
                            for j in 0..<c { dp[base + j * inner + i] = 0 }
                            continue
                        }
                        let k = gs * (wp?[pixel] ?? 1)
                        let target = Int(tp[pixel])
                        for j in 0..<c {
                            let idx = base + j * inner + i
                            dp[idx] = k * (pp[idx] - (j == target ? 1 : 0))
                        }
                    }
                }
                return [dx]
            }
        }
        return loss
    }
}
