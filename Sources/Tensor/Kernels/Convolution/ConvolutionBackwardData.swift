extension ConvolutionKernels {
    /// `inputGradient = conv^T(outputGradient)` (the gradient of the input; overwritten), plus
    /// `addingBias[c]` on every pixel of channel c when given (for a transposed convolution's bias).
    /// Buffers: outputGradient `[N, Cout, outH, outW]`, weight `[Cout, Cin, kh, kw]`,
    /// inputGradient `[N, Cin, H, W]`, addingBias `[Cin]`. `policy` forces a path (tests,
    /// benchmarks); the ops use the default.
    package static func backwardData(_ g: ConvGeometry, outputGradient: UnsafePointer<Float>,
                                     weight: UnsafePointer<Float>, inputGradient: UnsafeMutablePointer<Float>,
                                     addingBias: UnsafePointer<Float>? = nil, policy: ConvolutionPolicy = .automatic) {
        precondition(g.isValid, "ConvolutionKernels.backwardData: invalid geometry \(g)")
        if g.batch == 0 { return }
        let pixels = g.outPixels, k = g.columnRows, m = g.outChannels
        let inImage = g.inChannels * g.inPixels, outImage = m * pixels
        let planeCount = g.batch * g.inChannels

        // Start from 0 (or the bias) wherever the GEMM result is added, or not written at all.
        func fillPlanes() {
            Threads.parallelRanges(planeCount, minimumChunk: Swift.max(1, (1 << 16) / g.inPixels)) { r in
                for plane in r {
                    let v = addingBias?[plane % g.inChannels] ?? 0
                    (inputGradient + plane * g.inPixels).update(repeating: v, count: g.inPixels)
                }
            }
        }

        if g.isPointwise {
            let s = schedule(g, floatsPerPixel: 0, parallelism: policy.parallelism)
            if addingBias != nil { fillPlanes() }
            run(s) { item, _ in
                let (image, range) = s.pixels(ofItem: item, total: pixels)
                Gemm.sgemm(transposeA: true, m: k, n: range.count, k: m, a: weight, lda: k,
                           b: outputGradient + image * outImage + range.lowerBound, ldb: pixels,
                           beta: addingBias == nil ? 0 : 1,
                           c: inputGradient + image * inImage + range.lowerBound, ldc: pixels, threads: s.gemmThreads)
            }
            return
        }

        if g.isNonOverlapping {
            let covered = g.outHeight * g.stride == g.height && g.outWidth * g.stride == g.width
            if !covered { fillPlanes() }
            let s = schedule(g, floatsPerPixel: k, parallelism: policy.parallelism)
            ConvolutionWorkspace.withBuffer(floats: s.lanes * s.laneFloats) { ws in
                run(s) { item, lane in
                    let (image, range) = s.pixels(ofItem: item, total: pixels)
                    let n = range.count
                    let col = ws + lane * s.laneFloats
                    Gemm.sgemm(transposeA: true, m: k, n: n, k: m, a: weight, lda: k,
                               b: outputGradient + image * outImage + range.lowerBound, ldb: pixels,
                               c: col, ldc: s.columnStride, threads: s.gemmThreads)
                    forChannels(g.inChannels, work: k * n, parallel: s.splitsOverThreads) { channels in
                        scatter(col, g, pixels: range, channels: channels, stride: s.columnStride, into: inputGradient + image * inImage,
                                bias: addingBias)
                    }
                }
            }
            return
        }

        if let flipped = transposedGeometry(g), useTransposedForward(g, policy) {
            // A forward convolution of the output gradient: no column matrix of Cin*kh*kw rows to
            // write and scatter back, no zero fill (see `transposedGeometry`).
            let count = g.inChannels * g.outChannels * g.kernelHeight * g.kernelWidth
            ConvolutionWorkspace.withBuffer(floats: count) { w in
                flipKernel(weight, g, into: w)
                forward(flipped, input: outputGradient, weight: w, bias: addingBias, output: inputGradient, policy: policy)
            }
            return
        }

        // Overlapping kernels: blocks of one image add into the same input pixels. Threads take
        // whole images when the batch allows; for a smaller batch, each image's blocks are cut into
        // 2 runs per thread and run red-black (runs 0, 2, 4.. together, then 1, 3, 5..) when the
        // runs are tall enough that runs two apart never touch the same input rows; otherwise blocks
        // run in order with the GEMM split over the threads and col2im split by channel.
        fillPlanes()
        let (s, runs): (Schedule, [Range<Int>]?) = {
            // Small blocks pay here only for the thinnest GEMMs (inner dimension Cout <= 16): with
            // more output channels col2im's shorter rows cost more than the GEMM gains
            // (docs/PERFORMANCE.md, "Tap GEMMs, small-matrix blocks").
            let small = g.outChannels <= 16
            let byImage = schedule(g, floatsPerPixel: k, imagesOnly: true, smallBlocks: small, parallelism: policy.parallelism)
            if g.batch < Threads.count {
                let split = schedule(g, floatsPerPixel: k, smallBlocks: small, parallelism: policy.parallelism)
                if split.lanes > 1, let r = redBlackRuns(g, split) { return (split, r) }
            }
            return (byImage, nil)
        }()
        ConvolutionWorkspace.withBuffer(floats: s.lanes * s.laneFloats) { ws in
            func block(_ item: Int, _ lane: Int) {
                let (image, range) = s.pixels(ofItem: item, total: pixels)
                let n = range.count
                let col = ws + lane * s.laneFloats
                Gemm.sgemm(transposeA: true, m: k, n: n, k: m, a: weight, lda: k,
                           b: outputGradient + image * outImage + range.lowerBound, ldb: pixels,
                           c: col, ldc: s.columnStride, threads: s.gemmThreads)
                forChannels(g.inChannels, work: k * n, parallel: s.splitsOverThreads) { channels in
                    Im2Col.col2im(col, g, pixels: range, channels: channels, stride: s.columnStride,
                                  into: inputGradient + image * inImage)
                }
            }
            if let runs {
                for image in 0..<g.batch {
                    for phase in 0..<2 {
                        Threads.parallelFor(s.lanes) { lane in
                            for b in runs[2 * lane + phase] { block(image * s.blocksPerImage + b, lane) }
                        }
                    }
                }
            } else {
                run(s, itemsOf: s.lanes > 1) { item, lane in block(item, lane) }
            }
        }
    }

    /// For a stride-1 convolution, the data gradient is itself a convolution: of the output gradient
    /// (Cout channels, outH x outW) with the kernel turned 180 degrees and its two channel axes
    /// swapped, padded by `dilation * (k - 1) - pad` per side, which gives back H x W. Nil for other
    /// strides, or padding wider than the kernel's reach (the flipped padding would be negative).
    static func transposedGeometry(_ g: ConvGeometry) -> ConvGeometry? {
        let spanH = g.dilation * (g.kernelHeight - 1), spanW = g.dilation * (g.kernelWidth - 1)
        guard g.stride == 1, !g.isPointwise, max(g.padTop, g.padBottom) <= spanH, max(g.padLeft, g.padRight) <= spanW
        else { return nil }
        return ConvGeometry(batch: g.batch, inChannels: g.outChannels, height: g.outHeight, width: g.outWidth,
                            outChannels: g.inChannels, kernelHeight: g.kernelHeight, kernelWidth: g.kernelWidth,
                            stride: 1, dilation: g.dilation, padTop: spanH - g.padTop, padBottom: spanH - g.padBottom,
                            padLeft: spanW - g.padLeft, padRight: spanW - g.padRight)
    }

    /// Whether backward-data runs as that forward convolution (for a geometry that has one). Its
    /// column matrix has Cout*kh*kw rows instead of Cin*kh*kw and needs no col2im scatter, which
    /// wins where Cin > Cout (the decoder's convolutions on concatenated inputs) and loses elsewhere
    /// through im2col; where the flipped convolution runs as tap GEMMs (`TapConvolution`) or by
    /// Winograd (`WinogradConvolution`) it wins whatever the channel counts (docs/PERFORMANCE.md, "Convolution core").
    static func useTransposedForward(_ g: ConvGeometry, _ policy: ConvolutionPolicy) -> Bool {
        switch policy.backwardData {
        case .flippedForward: return true
        case .columns: return false
        case .automatic:
            guard let flipped = transposedGeometry(g) else { return false }
            return g.outChannels < g.inChannels || winogradTile(flipped, policy) != nil
                || (policy.tapGemms && TapConvolution.applies(to: flipped))
        }
    }

    /// `flipped[ci, co, y, x] = weight[co, ci, kh-1-y, kw-1-x]`.
    static func flipKernel(_ weight: UnsafePointer<Float>, _ g: ConvGeometry, into flipped: UnsafeMutablePointer<Float>) {
        let kh = g.kernelHeight, kw = g.kernelWidth, taps = kh * kw
        for co in 0..<g.outChannels {
            for ci in 0..<g.inChannels {
                let src = weight + (co * g.inChannels + ci) * taps
                let dst = flipped + (ci * g.outChannels + co) * taps
                for t in 0..<taps { dst[t] = src[taps - 1 - t] }
            }
        }
    }

    /// Splits one image's blocks into `2 * lanes` contiguous runs, or nil when two runs that are
    /// two apart would write a common input row (short images or tall kernels).
    static func redBlackRuns(_ g: ConvGeometry, _ s: Schedule) -> [Range<Int>]? {
        let count = 2 * s.lanes
        guard s.blocksPerImage >= count else { return nil }
        let runs = (0..<count).map { r in (r * s.blocksPerImage / count)..<((r + 1) * s.blocksPerImage / count) }
        let outW = g.outWidth, pixels = g.outPixels
        // Input rows written by a run: from its first output row's top tap to its last row's bottom tap.
        let rows = runs.map { r -> (Int, Int) in
            let first = r.lowerBound * s.block / outW
            let last = (Swift.min(pixels, r.upperBound * s.block) - 1) / outW
            return (first * g.stride - g.padTop, last * g.stride - g.padTop + g.dilation * (g.kernelHeight - 1))
        }
        for i in 0..<(count - 2) where rows[i].1 >= rows[i + 2].0 { return nil }
        return runs
    }

    /// The non-overlapping col2im: each column entry lands on its own input pixel (assigned, plus the
    /// bias if given). Only for `isNonOverlapping` geometries.
    static func scatter(_ col: UnsafePointer<Float>, _ g: ConvGeometry, pixels: Range<Int>, channels: Range<Int>, stride ld: Int,
                        into dx: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?) {
        let s = g.stride, kh = g.kernelHeight, kw = g.kernelWidth
        let w = g.width, outW = g.outWidth
        for c in channels {
            let plane = dx + c * g.inPixels
            let add = bias?[c] ?? 0
            var p = pixels.lowerBound
            while p < pixels.upperBound {
                let oy = p / outW
                let oxStart = p - oy * outW
                let count = Swift.min(outW, oxStart + (pixels.upperBound - p)) - oxStart
                for ky in 0..<kh {
                    let row = plane + (oy * s + ky) * w + oxStart * s
                    for kx in 0..<kw {
                        let src = col + ((c * kh + ky) * kw + kx) * ld + (p - pixels.lowerBound)
                        let dst = row + kx
                        if s == 2 && kw == 2 && kx == 0 {
                            // Interleave both taps of a row in one pass.
                            let src1 = src + ld
                            for i in 0..<count {
                                dst[i &* 2] = src[i] + add
                                dst[i &* 2 &+ 1] = src1[i] + add
                            }
                            break
                        }
                        for i in 0..<count { dst[i &* s] = src[i] + add }
                    }
                }
                p += count
            }
        }
    }
}
