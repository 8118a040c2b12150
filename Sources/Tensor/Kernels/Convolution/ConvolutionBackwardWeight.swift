extension ConvolutionKernels {
    /// `weightGradient = sum over images and pixels of dY . col^T` and `biasGradient[c] = sum of
    /// outputGradient over images and pixels of channel c` (each overwritten; pass nil to skip).
    /// `policy` forces a path (tests, benchmarks); the ops use the default.
    package static func backwardWeight(_ g: ConvGeometry, input: UnsafePointer<Float>,
                                       outputGradient: UnsafePointer<Float>,
                                       weightGradient: UnsafeMutablePointer<Float>?,
                                       biasGradient: UnsafeMutablePointer<Float>?,
                                       policy: ConvolutionPolicy = .automatic) {
        precondition(g.isValid, "ConvolutionKernels.backwardWeight: invalid geometry \(g)")
        let pixels = g.outPixels, k = g.columnRows, m = g.outChannels
        if let biasGradient {
            channelSums(outputGradient, batch: g.batch, channels: m, pixels: pixels, into: biasGradient)
        }
        guard let dw = weightGradient else { return }
        if g.batch == 0 { dw.update(repeating: 0, count: m * k); return }
        if let tile = winogradWeightGradientTile(g, policy),
           WinogradConvolution.backwardWeight(g, tile: tile, input: input, outputGradient: outputGradient, weightGradient: dw,
                                              parallelism: policy.parallelism) { return }
        if policy.tapGemms && TapConvolution.applies(to: g),
           TapConvolution.backwardWeight(g, input: input, outputGradient: outputGradient, weightGradient: dw,
                                         parallelism: policy.parallelism) { return }
        let inImage = g.inChannels * g.inPixels, outImage = m * pixels
        let pointwise = g.isPointwise
        let s = schedule(g, floatsPerPixel: pointwise ? 0 : k, parallelism: policy.parallelism)
        let transposed = useTransposedWeightGradient(g, policy)
        // Scratch per lane: the block's columns, and in the transposed form the block's output
        // gradient transposed. Partial gradients per lane follow (lane 0 writes `dw` directly in the
        // plain form), added in lane order at the end.
        let columnFloats = s.lanes * s.laneFloats
        let dyFloats = transposed ? s.block * m : 0
        let partialCount = transposed ? s.lanes : s.lanes - 1
        ConvolutionWorkspace.withBuffer(floats: columnFloats + s.lanes * dyFloats + partialCount * m * k) { ws in
            let dyScratch = ws + columnFloats
            let partials = dyScratch + s.lanes * dyFloats
            let firstOfLane = (0..<s.lanes).map { lane in lane * s.items / s.lanes }
            run(s) { item, lane in
                let (image, range) = s.pixels(ofItem: item, total: pixels)
                let n = range.count
                let x = input + image * inImage
                let dy = outputGradient + image * outImage + range.lowerBound
                let beta: Float = item == firstOfLane[lane] ? 0 : 1
                let (b, ldb) = columns(of: x, g, pixels: range, s, workspace: ws, lane: lane)
                if transposed {
                    // dW^T[K, Cout] += col[K, n] . dY^T[n, Cout]
                    let dyT = dyScratch + lane * dyFloats
                    CopyKernels.transpose(dy, rows: m, columns: n, sourceStride: pixels, into: dyT, destinationStride: m,
                                            parallel: s.splitsOverThreads)
                    Gemm.sgemm(m: k, n: m, k: n, a: b, lda: ldb, b: dyT, ldb: m, beta: beta,
                               c: partials + lane * m * k, ldc: m, threads: s.gemmThreads)
                } else {
                    // dW[Cout, K] += dY[Cout, n] . col[K, n]^T
                    Gemm.sgemm(transposeB: true, m: m, n: k, k: n, a: dy, lda: pixels, b: b, ldb: ldb, beta: beta,
                               c: lane == 0 ? dw : partials + (lane - 1) * m * k, ldc: k, threads: s.gemmThreads)
                }
            }
            if transposed {
                sumLanePartials(partials, lanes: s.lanes, items: s.items, transposing: k, m, into: dw)
            } else {
                // Lane 0 wrote `dw` itself; lanes 1... their partials.
                let addends = lanesWithItems(lanes: s.lanes, items: s.items).dropFirst().map { partials + ($0 - 1) * m * k }
                addPartials(addends, into: dw, count: m * k)
            }
        }
    }

    /// The lanes that ran at least one of `items` items (the others left their partial unwritten).
    static func lanesWithItems(lanes: Int, items: Int) -> [Int] {
        (0..<lanes).filter { lane in lane * items / lanes < (lane + 1) * items / lanes }
    }

    /// `sum[i] += addend[i]` for each addend in order, over the threads (a fixed order per element,
    /// so the result does not depend on the thread count).
    static func addPartials(_ addends: [UnsafeMutablePointer<Float>], into sum: UnsafeMutablePointer<Float>, count: Int) {
        if addends.isEmpty { return }
        Threads.parallelRanges(count, minimumChunk: 1 << 16) { r in
            for src in addends { for i in r { sum[i] += src[i] } }
        }
    }

    /// The weight gradient from per-lane partials of its transpose: lane `l`'s `[rows, columns]`
    /// partial is at `partials + l * rows * columns`; the lanes that ran items are summed in lane
    /// order into lane 0's, which is transposed into `dw` `[columns, rows]`.
    static func sumLanePartials(_ partials: UnsafeMutablePointer<Float>, lanes: Int, items: Int,
                                transposing rows: Int, _ columns: Int, into dw: UnsafeMutablePointer<Float>) {
        let count = rows * columns
        addPartials(lanesWithItems(lanes: lanes, items: items).dropFirst().map { partials + $0 * count }, into: partials, count: count)
        CopyKernels.transpose(partials, rows: rows, columns: columns, sourceStride: columns, into: dw, destinationStride: rows,
                              parallel: true)
    }

    /// Whether the weight gradient is computed as `dW^T = col . dY^T` (a plain GEMM, after transposing
    /// each block of the output gradient) rather than `dW = dY . col^T`. OpenBLAS reads the transposed
    /// column operand of the second form slowly, and its small-matrix kernels refuse that form; the
    /// extra transpose pays for up to 32 output channels and not for 128 and more
    /// (docs/PERFORMANCE.md, "Tap GEMMs, small-matrix blocks").
    static func useTransposedWeightGradient(_ g: ConvGeometry, _ policy: ConvolutionPolicy) -> Bool {
        switch policy.weightGradient {
        case .transposed: return true
        case .plain: return false
        case .automatic: return g.outChannels <= 32
        }
    }

    /// `sums[c] = sum over images and pixels of x[n, c, pixel]` for `x` `[batch, channels, pixels]`.
    package static func channelSums(_ x: UnsafePointer<Float>, batch: Int, channels: Int, pixels: Int,
                                    into sums: UnsafeMutablePointer<Float>) {
        Threads.parallelRanges(channels, minimumChunk: Swift.max(1, (1 << 16) / Swift.max(1, pixels * batch))) { r in
            for c in r {
                var total: Double = 0
                for image in 0..<batch { total += Double(sum(x + (image * channels + c) * pixels, count: pixels)) }
                sums[c] = Float(total)
            }
        }
    }

    /// Sum of `count` floats with 16 independent accumulators (vectorizes; bounded rounding growth).
    static func sum(_ p: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD16<Float>(repeating: 0)
        var i = 0
        let raw = UnsafeRawPointer(p)
        while i &+ 16 <= count {
            acc += raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self)
            i &+= 16
        }
        var tail: Float = 0
        while i < count { tail += p[i]; i &+= 1 }
        return acc.sum() + tail
    }
}
