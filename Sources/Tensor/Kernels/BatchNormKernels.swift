// Batch-norm loops over NCHW data: per-channel statistics, the fused normalize + activation pass,
// and the two backward passes. Work is split over (image, channel) planes, so each plane is a
// contiguous run of H*W floats; per-plane partial sums are combined per channel in image order,
// which keeps results independent of the thread count. The activation comes in as an
// `ActivationKernel`; the generic loops are specialised for each one (`ActivationKernelTable`).

enum BatchNormKernels {
    /// Elements summed in Float before the block total moves into a Double.
    static let blockSize = 4096

    /// Planes per parallel chunk so that a chunk holds at least ~64K elements.
    @inline(__always)
    static func planesPerChunk(_ planeSize: Int) -> Int { max(1, (1 << 16) / max(planeSize, 1)) }

    // MARK: Statistics

    /// Sum of (x - shift) and of (x - shift)^2 over `m` elements: Float lanes within blocks of
    /// `blockSize`, Double across blocks.
    @inline(__always)
    static func shiftedSums(_ x: UnsafePointer<Float>, _ m: Int, shift: Float) -> (Double, Double) {
        var total = 0.0, totalSquares = 0.0
        let k = Vector16(repeating: shift)
        var start = 0
        while start < m {
            let end = min(m, start &+ blockSize)
            var s0 = Vector16(), q0 = Vector16(), s1 = Vector16(), q1 = Vector16()
            var i = start
            while i &+ 32 <= end {
                let v0 = VectorMath.load(x + i) - k, v1 = VectorMath.load(x + (i &+ 16)) - k
                s0 += v0; q0 += v0 * v0
                s1 += v1; q1 += v1 * v1
                i &+= 32
            }
            var tailSum: Float = 0, tailSquares: Float = 0
            while i < end {
                let v = x[i] - shift
                tailSum += v; tailSquares += v * v
                i &+= 1
            }
            total += Double((s0 + s1).sum() + tailSum)
            totalSquares += Double((q0 + q1).sum() + tailSquares)
            start = end
        }
        return (total, totalSquares)
    }

    /// Per-channel mean and biased variance over N, H, W, computed in one pass over `x`.
    /// Each channel's sums are shifted by one of its own samples, so a large mean does not cancel
    /// the variance away.
    static func statistics(_ x: UnsafePointer<Float>, n: Int, c: Int, planeSize hw: Int)
        -> (mean: [Double], variance: [Double]) {
        let planes = n * c
        var partial = [Double](repeating: 0, count: 2 * planes)
        var shifts = [Float](repeating: 0, count: c)
        if hw > 0 && n > 0 { for ch in 0..<c { shifts[ch] = x[ch * hw] } }
        partial.withUnsafeMutableBufferPointer { buffer in
            let out = buffer.baseAddress!
            shifts.withUnsafeBufferPointer { shifts in
                let shifts = shifts.baseAddress!
                Threads.parallelRanges(planes, minimumChunk: planesPerChunk(hw)) { range in
                    for p in range {
                        let (s, q) = shiftedSums(x + p &* hw, hw, shift: shifts[p % c])
                        out[2 &* p] = s
                        out[2 &* p &+ 1] = q
                    }
                }
            }
        }
        let m = Double(n * hw)
        var mean = [Double](repeating: 0, count: c), variance = [Double](repeating: 0, count: c)
        for ch in 0..<c {
            var s = 0.0, q = 0.0
            for image in 0..<n {
                s += partial[2 * (image * c + ch)]
                q += partial[2 * (image * c + ch) + 1]
            }
            let shiftedMean = s / m
            mean[ch] = Double(shifts[ch]) + shiftedMean
            variance[ch] = max(q / m - shiftedMean * shiftedMean, 0)
        }
        return (mean, variance)
    }

    /// The NCHW extents the loops walk: `n * c` planes of `planeSize` floats.
    struct Layout {
        var n: Int, c: Int, planeSize: Int
        var planes: Int { n &* c }
    }

    // MARK: Forward

    /// y = activation(a[c] * x + b[c]) for every plane.
    static func normalize(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, n: Int, c: Int,
                          planeSize hw: Int, a: [Float], b: [Float], activation: Activation) {
        activation.kernels.normalize(x, y, Layout(n: n, c: c, planeSize: hw), a, b)
    }

    static func normalize<A: ActivationKernel>(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                               _ layout: Layout, a: [Float], b: [Float], _ act: A) {
        let (c, hw) = (layout.c, layout.planeSize)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                let a = a.baseAddress!, b = b.baseAddress!
                Threads.parallelRanges(layout.planes, minimumChunk: planesPerChunk(hw)) { range in
                    for p in range {
                        let ch = p % c
                        normalizePlane(x + p &* hw, y + p &* hw, hw, a: a[ch], b: b[ch], act)
                    }
                }
            }
        }
    }

    @inline(__always)
    static func normalizePlane<A: ActivationKernel>(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                                    _ m: Int, a: Float, b: Float, _ act: A) {
        let av = Vector16(repeating: a), bv = Vector16(repeating: b)
        var i = 0
        while i &+ 16 <= m {
            VectorMath.store(act.forward(VectorMath.load(x + i) * av + bv), y + i)
            i &+= 16
        }
        if i < m {
            let r = m &- i
            VectorMath.storePartial(act.forward(VectorMath.loadPartial(x + i, r) * av + bv), y + i, r)
        }
    }

    // MARK: Backward

    /// Per channel: sum of dz and of dz * (x - mean), where dz = g * activation'(a x + b).
    /// `y` is the forward output (read only by activations whose derivative uses the output).
    static func backwardSums(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ g: UnsafePointer<Float>,
                             n: Int, c: Int, planeSize hw: Int, a: [Float], b: [Float], mean: [Float],
                             activation: Activation) -> (sumDz: [Double], sumDzCentered: [Double]) {
        activation.kernels.backwardSums(x, y, g, Layout(n: n, c: c, planeSize: hw),
                                        ChannelParameters(a: a, b: b, mean: mean))
    }

    /// Per-channel constants of the backward passes, interleaved so one channel's values are adjacent.
    struct ChannelParameters {
        static let stride = 6
        /// a, b, mean, coefficient of dz, coefficient of (x - mean), constant; per channel.
        var table: [Float]
        init(a: [Float], b: [Float], mean: [Float], dz: [Float]? = nil, centered: [Float]? = nil, constant: [Float]? = nil) {
            table = []
            table.reserveCapacity(ChannelParameters.stride * a.count)
            for ch in 0..<a.count {
                table += [a[ch], b[ch], mean[ch], dz?[ch] ?? 0, centered?[ch] ?? 0, constant?[ch] ?? 0]
            }
        }
    }

    static func backwardSums<A: ActivationKernel>(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                                                  _ g: UnsafePointer<Float>, _ layout: Layout,
                                                  _ parameters: ChannelParameters, _ act: A) -> ([Double], [Double]) {
        let (n, c, hw) = (layout.n, layout.c, layout.planeSize)
        let planes = layout.planes
        var partial = [Double](repeating: 0, count: 2 * planes)
        partial.withUnsafeMutableBufferPointer { buffer in
            let out = buffer.baseAddress!
            parameters.table.withUnsafeBufferPointer { table in
                let table = table.baseAddress!
                Threads.parallelRanges(planes, minimumChunk: planesPerChunk(hw)) { range in
                    for p in range {
                        let k = table + ChannelParameters.stride &* (p % c)
                        let offset = p &* hw
                        let (s, q) = backwardPlaneSums(x + offset, y + offset, g + offset, hw,
                                                       a: k[0], b: k[1], mean: k[2], act)
                        out[2 &* p] = s
                        out[2 &* p &+ 1] = q
                    }
                }
            }
        }
        var sumDz = [Double](repeating: 0, count: c), sumDzCentered = [Double](repeating: 0, count: c)
        for ch in 0..<c {
            for image in 0..<n {
                sumDz[ch] += partial[2 * (image * c + ch)]
                sumDzCentered[ch] += partial[2 * (image * c + ch) + 1]
            }
        }
        return (sumDz, sumDzCentered)
    }

    @inline(__always)
    static func backwardPlaneSums<A: ActivationKernel>(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                                                       _ g: UnsafePointer<Float>, _ m: Int,
                                                       a: Float, b: Float, mean: Float, _ act: A) -> (Double, Double) {
        let av = Vector16(repeating: a), bv = Vector16(repeating: b), mv = Vector16(repeating: mean)
        var total = 0.0, totalCentered = 0.0
        var start = 0
        while start < m {
            let end = min(m, start &+ blockSize)
            var s = Vector16(), q = Vector16()
            var i = start
            while i &+ 16 <= end {
                let xv = VectorMath.load(x + i)
                let yv = A.derivativeUsesOutput ? VectorMath.load(y + i) : Vector16()
                let dz = act.backward(VectorMath.load(g + i), input: xv * av + bv, output: yv)
                s += dz
                q += dz * (xv - mv)
                i &+= 16
            }
            if i < end {
                // Zero-padded lanes have g = 0, hence dz = 0: they add nothing.
                let r = end &- i
                let xv = VectorMath.loadPartial(x + i, r)
                let yv = A.derivativeUsesOutput ? VectorMath.loadPartial(y + i, r) : Vector16()
                let dz = act.backward(VectorMath.loadPartial(g + i, r), input: xv * av + bv, output: yv)
                s += dz
                q += dz * (xv - mv)
            }
            total += Double(s.sum())
            totalCentered += Double(q.sum())
            start = end
        }
        return (total, totalCentered)
    }

    /// dx = coefficientDz[c] * dz + coefficientCentered[c] * (x - mean[c]) + constant[c],
    /// with dz = g * activation'(a x + b) recomputed from x (or taken from the output y).
    static func backwardInput(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ g: UnsafePointer<Float>,
                              _ dx: UnsafeMutablePointer<Float>, n: Int, c: Int, planeSize hw: Int,
                              a: [Float], b: [Float], mean: [Float], coefficientDz: [Float],
                              coefficientCentered: [Float], constant: [Float], activation: Activation) {
        let parameters = ChannelParameters(a: a, b: b, mean: mean, dz: coefficientDz, centered: coefficientCentered,
                                           constant: constant)
        activation.kernels.backwardInput(x, y, g, dx, Layout(n: n, c: c, planeSize: hw), parameters)
    }

    static func backwardInput<A: ActivationKernel>(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                                                   _ g: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                                                   _ layout: Layout, _ parameters: ChannelParameters, _ act: A) {
        let (c, hw) = (layout.c, layout.planeSize)
        parameters.table.withUnsafeBufferPointer { table in
            let table = table.baseAddress!
            Threads.parallelRanges(layout.planes, minimumChunk: planesPerChunk(hw)) { range in
                for p in range {
                    let k = table + ChannelParameters.stride &* (p % c)
                    let offset = p &* hw
                    backwardInputPlane(x + offset, y + offset, g + offset, dx + offset, hw, a: k[0], b: k[1], mean: k[2],
                                       coefficientDz: k[3], coefficientCentered: k[4], constant: k[5], act)
                }
            }
        }
    }

    @inline(__always)
    static func backwardInputPlane<A: ActivationKernel>(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                                                        _ g: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                                                        _ m: Int, a: Float, b: Float, mean: Float, coefficientDz: Float,
                                                        coefficientCentered: Float, constant: Float, _ act: A) {
        let av = Vector16(repeating: a), bv = Vector16(repeating: b), mv = Vector16(repeating: mean)
        let cd = Vector16(repeating: coefficientDz), cc = Vector16(repeating: coefficientCentered)
        let k0 = Vector16(repeating: constant)
        @inline(__always) func compute(_ xv: Vector16, _ yv: Vector16, _ gv: Vector16) -> Vector16 {
            let dz = act.backward(gv, input: xv * av + bv, output: yv)
            return dz * cd + (xv - mv) * cc + k0
        }
        var i = 0
        while i &+ 16 <= m {
            let yv = A.derivativeUsesOutput ? VectorMath.load(y + i) : Vector16()
            VectorMath.store(compute(VectorMath.load(x + i), yv, VectorMath.load(g + i)), dx + i)
            i &+= 16
        }
        if i < m {
            let r = m &- i
            let yv = A.derivativeUsesOutput ? VectorMath.loadPartial(y + i, r) : Vector16()
            VectorMath.storePartial(compute(VectorMath.loadPartial(x + i, r), yv, VectorMath.loadPartial(g + i, r)), dx + i, r)
        }
    }
}
