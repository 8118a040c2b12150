/// Stride-1 convolutions as one GEMM per kernel tap over a zero-padded copy of the input, with no
/// column matrix.
///
/// Index output pixels by their position in the padded input: pixel `(oy, ox)` is `q = oy*Wp + ox`
/// (`Wp` = padded width). Tap `(ky, kx)` of that pixel reads the padded input at
/// `q + ky*d*Wp + kx*d`, so over a band of output rows the tap's operand is the padded band itself,
/// read at a constant offset, with a row (channel) stride of one padded plane: a plain GEMM operand
/// that OpenBLAS takes in place. Per band of `R` output rows:
/// - forward:         `Y'[Cout, R*Wp] = sum over taps of W_tap[Cout, Cin] . band[Cin, shift_tap + (0..<R*Wp)]`,
///                    then the `outW` valid pixels of each row copied out (plus the bias);
/// - backward-weight: `dW_tap^T[Cin, Cout] += band[Cin, shift_tap + (0..<R*Wp)] . dY'^T[R*Wp, Cout]`
///                    (stored interleaved as `dW^T[Cin, taps, Cout]`, the transpose of dW's layout),
///                    with dY' the block's output gradient transposed, zero in the `Wp - outW`
///                    columns past each row's end;
/// - backward-data:   a forward convolution of the output gradient with the flipped kernel
///                    (`ConvolutionKernels.transposedGeometry`), so it runs through `forward`.
/// Output columns `outW..<Wp` of each padded row are computed from reads that run into the next
/// row and discarded (2/Wp of the work for a 3x3 "same" convolution).
///
/// Compared with im2col + one GEMM, this writes the input once per band instead of `kh*kw` times
/// and the GEMMs read it from cache (docs/PERFORMANCE.md, "Tap GEMMs, small-matrix blocks").
/// `ConvolutionPolicy.tapGemms` turns the path off for comparisons.
enum TapConvolution {
    /// Band width (`R*Wp` padded pixels) for channel counts where even one row's GEMM exceeds
    /// OpenBLAS's small-matrix limit. Otherwise bands are as wide as that limit allows
    /// (`Cin*Cout*R*Wp <= 100^3`), so that OpenBLAS takes its unpacked small-matrix kernels.
    static let bandPixels = 1024

    /// Whether tap GEMMs suit `g`, by the shapes where they beat im2col (docs/PERFORMANCE.md, "Tap
    /// GEMMs, small-matrix blocks"): stride 1 and a kernel larger than 1x1 (1x1 convolutions need
    /// no im2col anyway); at least 8 input and output channels (each tap's GEMM is Cout x Cin, too
    /// thin below that); at most 256 output channels (beyond, the GEMM is efficient anyway and the
    /// `kh*kw` passes over the result cost more than im2col); output rows of at least 64 pixels (the
    /// discarded columns cost 2/Wp of the work).
    static func applies(to g: ConvGeometry) -> Bool {
        g.stride == 1 && !(g.kernelHeight == 1 && g.kernelWidth == 1)
            && g.inChannels >= 8 && (8...256).contains(g.outChannels) && g.outWidth >= 64
    }

    /// The band layout and schedule of one convolution.
    struct Plan {
        var g: ConvGeometry
        /// Padded row width and the rows of padding read above the last output row of a band.
        var wp: Int, halo: Int
        /// Output rows per band, bands per image, and the lanes that run the (image, band) items
        /// (as in `ConvolutionKernels.Schedule`).
        var rows: Int, bandsPerImage: Int, lanes: Int
        /// True when items run one after another with each GEMM split over all threads.
        var splitsOverThreads: Bool
        /// Floats of one channel plane of a band, and of the band (all channels).
        var bandPlane: Int, bandFloats: Int
        var items: Int { g.batch * bandsPerImage }
        var gemmThreads: Int { splitsOverThreads ? Threads.count : 1 }

        /// Offset of tap `t` (row-major over kh x kw) in the padded band.
        func shift(_ t: Int) -> Int {
            (t / g.kernelWidth) * g.dilation * wp + (t % g.kernelWidth) * g.dilation
        }

        /// Image and output rows of item `item`.
        func band(_ item: Int) -> (image: Int, rows: Range<Int>) {
            let image = item / bandsPerImage, b = item - image * bandsPerImage
            return (image, (b * rows)..<Swift.min(g.outHeight, (b + 1) * rows))
        }
    }

    /// Bands of the width above, at least one per thread, whose scratch
    /// (`scratchPerPixel` floats per padded output pixel besides the band) fits the workspace
    /// limit; nil when even one-row bands would not fit (im2col then takes the call).
    static func plan(_ g: ConvGeometry, scratchPerPixel: Int, parallelism: ConvolutionPolicy.Parallelism) -> Plan? {
        let wp = g.width + g.padLeft + g.padRight, halo = g.dilation * (g.kernelHeight - 1)
        let slack = g.dilation * (g.kernelWidth - 1)
        let outH = g.outHeight, threads = Threads.count
        func floats(_ r: Int) -> Int {
            let plane = (r + halo) * wp + slack
            return g.inChannels * plane + slack + r * wp * scratchPerPixel
        }
        let smallWidth = ConvolutionKernels.smallGemmLimit / Swift.max(1, g.inChannels * g.outChannels)
        let target = smallWidth >= wp ? smallWidth : bandPixels
        var rows = Swift.max(1, Swift.min(outH, target / wp))
        let lanesWanted = threads > 1 && parallelism != .splitGemm ? threads : 1
        // At least one band per lane when the batch is small.
        if g.batch < lanesWanted { rows = Swift.min(rows, Swift.max(1, (outH * g.batch + lanesWanted - 1) / lanesWanted)) }
        while rows > 1 && floats(rows) * lanesWanted > ConvolutionWorkspace.limitFloats { rows = (rows + 1) / 2 }
        var bands = (outH + rows - 1) / rows
        // Equal work per lane when there are few bands.
        if lanesWanted > 1 && (g.batch * bands) % lanesWanted != 0 && g.batch * bands < 8 * lanesWanted {
            bands = Swift.min(outH, (bands + lanesWanted - 1) / lanesWanted * lanesWanted)
            rows = (outH + bands - 1) / bands
            bands = (outH + rows - 1) / rows
        }
        let items = g.batch * bands
        let useLanes = lanesWanted > 1 && (parallelism == .lanes || items >= lanesWanted)
        let lanes = useLanes ? Swift.max(1, Swift.min(lanesWanted, items)) : 1
        guard floats(rows) * lanes <= ConvolutionWorkspace.limitFloats else { return nil }
        let plane = (rows + halo) * wp + slack
        return Plan(g: g, wp: wp, halo: halo, rows: rows, bandsPerImage: bands, lanes: lanes, splitsOverThreads: !useLanes,
                    bandPlane: plane, bandFloats: g.inChannels * plane + slack)
    }

    /// Runs `body(item, lane)` over all items: contiguous runs per lane, or serially.
    static func run(_ p: Plan, _ body: (Int, Int) -> Void) {
        if p.lanes > 1 {
            Threads.parallelFor(p.lanes) { lane in
                for item in (lane * p.items / p.lanes)..<((lane + 1) * p.items / p.lanes) { body(item, lane) }
            }
        } else {
            for item in 0..<p.items { body(item, 0) }
        }
    }

    /// Copies the padded input rows that output rows `rows` read into `band` (channel planes of
    /// `p.bandPlane` floats; zeros in the padding and in the slack the last tap's reads run into).
    static func fillBand(_ p: Plan, image x: UnsafePointer<Float>, rows: Range<Int>, into band: UnsafeMutablePointer<Float>) {
        let g = p.g, w = g.width, wp = p.wp
        let bandRows = rows.count + p.halo
        let used = bandRows * wp
        for c in 0..<g.inChannels {
            let plane = x + c * g.height * w
            let dst = band + c * p.bandPlane
            for j in 0..<bandRows {
                let iy = rows.lowerBound + j - g.padTop
                let row = dst + j * wp
                if iy < 0 || iy >= g.height {
                    row.update(repeating: 0, count: wp)
                } else {
                    if g.padLeft > 0 { row.update(repeating: 0, count: g.padLeft) }
                    (row + g.padLeft).update(from: plane + iy * w, count: w)
                    if g.padRight > 0 { (row + g.padLeft + w).update(repeating: 0, count: g.padRight) }
                }
            }
            (dst + used).update(repeating: 0, count: p.bandPlane - used)
        }
        // The last channel's reads may run past its plane by the slack.
        (band + g.inChannels * p.bandPlane).update(repeating: 0, count: p.bandFloats - g.inChannels * p.bandPlane)
    }

    /// `taps[t][co][ci] = weight[co][ci][t]`: each tap's `[Cout, Cin]` matrix, contiguous.
    static func splitTaps(_ weight: UnsafePointer<Float>, _ g: ConvGeometry, into taps: UnsafeMutablePointer<Float>) {
        let t = g.kernelHeight * g.kernelWidth, mk = g.outChannels * g.inChannels
        for j in 0..<mk {
            for tap in 0..<t { taps[tap * mk + j] = weight[j * t + tap] }
        }
    }

    // MARK: Forward

    /// `output = conv(input, weight) + bias` (see `ConvolutionKernels.forward`); false when the
    /// workspace limit is too small for one-row bands (the caller then uses im2col).
    static func forward(_ g: ConvGeometry, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                        parallelism: ConvolutionPolicy.Parallelism) -> Bool {
        let m = g.outChannels, k = g.inChannels, taps = g.kernelHeight * g.kernelWidth
        guard let p = plan(g, scratchPerPixel: m, parallelism: parallelism) else { return false }
        let laneFloats = p.bandFloats + p.rows * p.wp * m
        let outW = g.outWidth, outPixels = g.outPixels, inImage = g.inChannels * g.inPixels
        ConvolutionWorkspace.withBuffer(floats: taps * m * k + p.lanes * laneFloats) { ws in
            splitTaps(weight, g, into: ws)
            let tapWeights = UnsafePointer(ws)
            run(p) { item, lane in
                let (image, rows) = p.band(item)
                let band = ws + taps * m * k + lane * laneFloats
                let result = band + p.bandFloats
                let n = rows.count * p.wp
                fillBand(p, image: input + image * inImage, rows: rows, into: band)
                for t in 0..<taps {
                    Gemm.sgemm(m: m, n: n, k: k, a: tapWeights + t * m * k, lda: k, b: band + p.shift(t), ldb: p.bandPlane,
                               beta: t == 0 ? 0 : 1, c: result, ldc: n, threads: p.gemmThreads)
                }
                let out = output + image * m * outPixels + rows.lowerBound * outW
                for co in 0..<m {
                    let add = bias?[co] ?? 0
                    for r in 0..<rows.count {
                        let src = result + co * n + r * p.wp, dst = out + co * outPixels + r * outW
                        if bias == nil {
                            dst.update(from: src, count: outW)
                        } else {
                            for i in 0..<outW { dst[i] = src[i] + add }
                        }
                    }
                }
            }
        }
        return true
    }

    // MARK: Backward weight

    /// `weightGradient = sum over images and pixels of dY . col^T` (see
    /// `ConvolutionKernels.backwardWeight`; the bias gradient is the caller's); false when the
    /// workspace limit is too small for one-row bands.
    static func backwardWeight(_ g: ConvGeometry, input: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>,
                               weightGradient dw: UnsafeMutablePointer<Float>,
                               parallelism: ConvolutionPolicy.Parallelism) -> Bool {
        let m = g.outChannels, k = g.inChannels, taps = g.kernelHeight * g.kernelWidth
        guard let p = plan(g, scratchPerPixel: m, parallelism: parallelism) else { return false }
        let laneFloats = p.bandFloats + p.rows * p.wp * m
        let partial = taps * k * m
        let outW = g.outWidth, outPixels = g.outPixels, inImage = g.inChannels * g.inPixels
        ConvolutionWorkspace.withBuffer(floats: p.lanes * (laneFloats + partial)) { ws in
            let partials = ws + p.lanes * laneFloats
            let firstOfLane = (0..<p.lanes).map { lane in lane * p.items / p.lanes }
            run(p) { item, lane in
                let (image, rows) = p.band(item)
                let band = ws + lane * laneFloats
                let dyT = band + p.bandFloats
                let n = rows.count * p.wp
                fillBand(p, image: input + image * inImage, rows: rows, into: band)
                // dY'^T[n, Cout]: each output row's gradient transposed, zero past the row's end.
                let dy = outputGradient + image * m * outPixels + rows.lowerBound * outW
                for r in 0..<rows.count {
                    let dst = dyT + r * p.wp * m
                    CopyKernels.transpose(dy + r * outW, rows: m, columns: outW, sourceStride: outPixels,
                                          into: dst, destinationStride: m, parallel: false)
                    (dst + outW * m).update(repeating: 0, count: (p.wp - outW) * m)
                }
                // Tap t's [Cin, Cout] result goes to columns t*Cout..< of the lane's [Cin, taps*Cout]
                // partial: row ci*taps + t of dW^T, so dW is its plain transpose.
                let target = partials + lane * partial
                let beta: Float = item == firstOfLane[lane] ? 0 : 1
                for t in 0..<taps {
                    Gemm.sgemm(m: k, n: m, k: n, a: band + p.shift(t), lda: p.bandPlane, b: dyT, ldb: m,
                               beta: beta, c: target + t * m, ldc: taps * m, threads: p.gemmThreads)
                }
            }
            ConvolutionKernels.sumLanePartials(partials, lanes: p.lanes, items: p.items, transposing: k * taps, m, into: dw)
        }
        return true
    }
}
