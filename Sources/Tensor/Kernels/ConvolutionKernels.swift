/// The shape of a 2-D convolution: NCHW input `[batch, inChannels, height, width]`, weight
/// `[outChannels, inChannels, kernelHeight, kernelWidth]`, one stride and one dilation for both axes,
/// zero padding per side. The output is `[batch, outChannels, outHeight, outWidth]`.
///
/// A transposed convolution is described by the convolution it is the adjoint of: its input is this
/// geometry's output and its output this geometry's input.
public struct ConvGeometry: Sendable, Equatable, CustomStringConvertible {
    public var batch: Int
    public var inChannels: Int
    public var height: Int
    public var width: Int
    public var outChannels: Int
    public var kernelHeight: Int
    public var kernelWidth: Int
    public var stride: Int
    public var dilation: Int
    public var padTop: Int
    public var padBottom: Int
    public var padLeft: Int
    public var padRight: Int

    public init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int,
                kernelHeight: Int, kernelWidth: Int, stride: Int = 1, dilation: Int = 1,
                padTop: Int = 0, padBottom: Int = 0, padLeft: Int = 0, padRight: Int = 0) {
        self.batch = batch; self.inChannels = inChannels; self.height = height; self.width = width
        self.outChannels = outChannels; self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth
        self.stride = stride; self.dilation = dilation
        self.padTop = padTop; self.padBottom = padBottom; self.padLeft = padLeft; self.padRight = padRight
    }

    /// Output rows: `floor((H + pads - dilation*(kh-1) - 1) / stride) + 1`.
    public var outHeight: Int { (height + padTop + padBottom - dilation * (kernelHeight - 1) - 1) / stride + 1 }
    /// Output columns.
    public var outWidth: Int { (width + padLeft + padRight - dilation * (kernelWidth - 1) - 1) / stride + 1 }
    /// Output pixels per channel plane.
    public var outPixels: Int { outHeight * outWidth }
    /// Input pixels per channel plane.
    public var inPixels: Int { height * width }
    /// Rows of the im2col matrix (the GEMM's inner dimension in forward): `inChannels * kh * kw`.
    public var columnRows: Int { inChannels * kernelHeight * kernelWidth }
    /// Multiply-adds times two of the forward pass (the same for each backward GEMM).
    public var flops: Double { 2 * Double(batch) * Double(outChannels) * Double(outPixels) * Double(columnRows) }

    /// 1x1, stride 1, no padding: the input planes are already the column matrix.
    var isPointwise: Bool {
        kernelHeight == 1 && kernelWidth == 1 && stride == 1 && padTop == 0 && padBottom == 0 && padLeft == 0 && padRight == 0
    }

    /// Kernel equal to the stride, no padding or dilation: every input pixel is under at most one
    /// kernel tap, so the adjoint of im2col is a plain scatter (U-Net's k2 s2 up-convolution).
    var isNonOverlapping: Bool {
        kernelHeight == stride && kernelWidth == stride && dilation == 1
            && padTop == 0 && padBottom == 0 && padLeft == 0 && padRight == 0
    }

    /// True when every extent is positive and the output is not empty.
    public var isValid: Bool {
        batch >= 0 && inChannels > 0 && outChannels > 0 && height > 0 && width > 0 && kernelHeight > 0
            && kernelWidth > 0 && stride > 0 && dilation > 0 && min(padTop, padBottom, padLeft, padRight) >= 0
            && height + padTop + padBottom >= dilation * (kernelHeight - 1) + 1
            && width + padLeft + padRight >= dilation * (kernelWidth - 1) + 1
    }

    public var description: String {
        "conv \(inChannels)->\(outChannels) k\(kernelHeight)x\(kernelWidth) s\(stride) d\(dilation) "
            + "pad(t\(padTop) b\(padBottom) l\(padLeft) r\(padRight)) on \(batch)x\(height)x\(width) -> \(outHeight)x\(outWidth)"
    }
}

/// The convolution kernels over raw NCHW buffers: im2col + SGEMM with bounded, reused workspace.
/// No autodiff here; `conv2d`/`convTranspose2d` call these.
///
/// GEMMs, for one image and a block of output pixels `p0..<p1` (`n` pixels):
/// - forward:          `Y[Cout, n] = W[Cout, K] . col[K, n]`         (K = Cin*kh*kw)
/// - backward-data:    `dcol[K, n] = W^T . dY[Cout, n]`, then col2im into dX
/// - backward-weight:  `dW[Cout, K] += dY[Cout, n] . col[K, n]^T`, or for up to 32 output channels
///                     `dW^T[K, Cout] += col[K, n] . dY^T[n, Cout]` (`useTransposedWeightGradient`)
/// 1x1 stride-1 unpadded convolutions use the input planes as `col` directly. Non-overlapping ones
/// (kernel == stride, U-Net's up-convolution as a transposed conv) scatter instead of accumulating.
/// Stride-1 convolutions with moderate channel counts and wide rows skip the column matrix: one
/// GEMM per kernel tap over a zero-padded band of the input (`TapConvolution`), and their
/// backward-data runs as the forward convolution of the flipped kernel. Thin GEMMs get blocks
/// within OpenBLAS's small-matrix limit (`smallGemmPixels`).
///
/// Threads (see `Threads`): work is cut into items (image, pixel block). With at least as many items
/// as threads, each thread takes a contiguous run of items with its own slice of the workspace and
/// BLAS at one thread; otherwise items run one after another, im2col/col2im split over channels and
/// each GEMM split into bands over all threads (`Gemm.sgemm(threads:)`, never OpenBLAS's own
/// threads). Either way each output element is written by one thread in a fixed order, so results
/// do not depend on the thread count beyond BLAS's summation order
/// (and, for the weight gradient, the order in which per-thread partial sums are added).
public enum ConvolutionKernels {
    // MARK: Scheduling

    /// How the kernels spread one call over `Threads.count` threads.
    public enum Parallelism: String, Sendable, CaseIterable {
        /// Chosen per call from the shape (the default; see `schedule`).
        case automatic
        /// Independent lanes, one per thread, each running its own blocks with single-threaded BLAS,
        /// whenever there are at least as many blocks as threads.
        case lanes
        /// Blocks one after another, each GEMM split into bands over the threads, im2col/col2im split
        /// by channel.
        case splitGemm = "split-gemm"
    }

    /// The schedule policy for calls that start afterwards (for benchmarks and tuning; results agree
    /// between policies up to float reassociation). Not meant to change while convolutions run.
    nonisolated(unsafe) public static var parallelism: Parallelism = .automatic

    static var allowLanes: Bool { parallelism != .splitGemm }

    struct Schedule {
        /// Output pixels per block.
        var block: Int
        var blocksPerImage: Int
        var items: Int
        /// Threads each running a contiguous run of items (1: items run serially, GEMMs split over the threads).
        var lanes: Int
        /// Floats of workspace per lane.
        var laneFloats: Int

        /// Row stride of a block's column matrix: the block width padded so that consecutive rows
        /// do not start at the same offset modulo 4 KiB. With a power-of-two stride (blocks of 512
        /// or 1024 pixels are common) the rows alias in the caches and OpenBLAS's packing of a
        /// 16-row operand ran at half speed (docs/PERFORMANCE.md, "Thin GEMMs").
        var columnStride: Int { ConvolutionKernels.paddedStride(block) }

        /// Threads inside each GEMM: all of them when items run one after another, else one.
        var gemmThreads: Int { lanes > 1 ? 1 : Threads.count }

        func pixels(ofItem item: Int, total: Int) -> (image: Int, range: Range<Int>) {
            let image = item / blocksPerImage, b = item - image * blocksPerImage
            let p0 = b * block
            return (image, p0..<Swift.min(total, p0 + block))
        }
    }

    /// Cuts the output pixels into blocks whose scratch (`floatsPerPixel` floats per pixel) fits the
    /// workspace share of one lane, preferring cache-sized blocks, or blocks within OpenBLAS's
    /// small-matrix limit for thin GEMMs when `smallBlocks` (see `smallGemmPixels`). Block counts are rounded so the
    /// lanes get equal work (and, for `imagesOnly == false` with a batch smaller than the thread
    /// count, so the red-black split of `backwardData` has an even number of runs per lane).
    static func schedule(_ g: ConvGeometry, floatsPerPixel: Int, imagesOnly: Bool = false,
                         smallBlocks: Bool = true) -> Schedule {
        let threads = Threads.count
        let pixels = g.outPixels
        if floatsPerPixel == 0 {
            // No scratch: split pixels only to give every thread work when the batch is small.
            let perImage = imagesOnly || g.batch >= threads ? 1 : threads
            let block = (pixels + perImage - 1) / perImage
            let blocks = (pixels + block - 1) / block
            let items = g.batch * blocks
            return Schedule(block: block, blocksPerImage: blocks, items: items,
                            lanes: threads > 1 && items >= threads && allowLanes ? threads : 1, laneFloats: 0)
        }
        let smallPixels = smallBlocks ? smallGemmPixels(g) : nil
        func plan(lanes: Int) -> Schedule {
            let share = ConvolutionWorkspace.limitFloats / lanes
            let preferred = ConvolutionWorkspace.preferredBlockBytes / MemoryLayout<Float>.stride
            // Keep GEMMs at least ~1024 pixels wide when the limit allows, even above the preferred
            // size, unless they are thin enough for OpenBLAS's small-matrix kernels.
            let budget = smallPixels.map { Swift.min(share, $0 * floatsPerPixel) }
                ?? Swift.min(share, Swift.max(preferred, floatsPerPixel * 1024))
            let widest = Swift.max(1, Swift.min(pixels, budget / floatsPerPixel))
            var blocks = (pixels + widest - 1) / widest
            if lanes > 1 && !imagesOnly && g.batch < lanes {
                blocks = Swift.min(pixels, (blocks + 2 * lanes - 1) / (2 * lanes) * (2 * lanes))
            } else if lanes > 1 && (g.batch * blocks) % lanes != 0 && g.batch * blocks < 8 * lanes {
                blocks = Swift.min(pixels, (blocks + lanes - 1) / lanes * lanes)
            }
            let block = (pixels + blocks - 1) / blocks
            blocks = (pixels + block - 1) / block
            return Schedule(block: block, blocksPerImage: blocks, items: g.batch * blocks, lanes: lanes,
                            laneFloats: paddedStride(block) * floatsPerPixel)
        }
        if threads > 1 && allowLanes {
            let parallel = plan(lanes: threads)
            if imagesOnly ? g.batch >= threads : parallel.items >= threads { return parallel }
        }
        return plan(lanes: 1)
    }

    /// Blocks of this many output pixels keep each of the three GEMMs of `g` within OpenBLAS's
    /// small-matrix limit, or nil when such blocks would be too narrow to pay for a call each.
    ///
    /// OpenBLAS (0.3.16 and later, AVX-512 kernels as picked on this Zen 4 and on Skylake-X and
    /// later Intel CPUs) runs GEMMs with M*N*K <= 100^3 through kernels that read the operands in
    /// place instead of packing them first. For the thin GEMMs of the first and last U-Net levels
    /// (16-64 output channels) that is 1.2-1.7x the packed path at our usual 4 MiB blocks (C
    /// program against the same library, docs/PERFORMANCE.md "Thin GEMMs"): the packing copy of the
    /// column matrix costs as much as the multiply there. Narrower blocks (wider GEMMs) measured
    /// slower in place (`ConvolutionTuning.testSmallGemmBlocks`), hence the minimum width.
    static func smallGemmPixels(_ g: ConvGeometry) -> Int? {
        guard smallGemmBlocks else { return nil }
        let pixels = smallGemmLimit / Swift.max(1, g.columnRows * g.outChannels)
        return pixels >= smallGemmMinimumPixels ? pixels : nil
    }
    /// OpenBLAS's bound on M*N*K for its small-matrix kernels (`sgemm_small_kernel_permit`).
    static let smallGemmLimit = 1_000_000
    /// Narrower blocks than this use the packed path.
    nonisolated(unsafe) static var smallGemmMinimumPixels = 96
    /// Tuning switch (`ConvolutionTuning.testSmallGemmBlocks`): false keeps cache-sized blocks for every shape.
    nonisolated(unsafe) static var smallGemmBlocks = true

    /// `count` rounded up to a multiple of 32 floats (128 bytes) plus 16, so the stride is an odd
    /// multiple of 64 bytes and successive rows fall in different cache sets.
    static func paddedStride(_ count: Int) -> Int { padColumns ? (count + 31) / 32 * 32 + 16 : count }
    /// Tuning switch (the A/B in `ConvolutionTuning.testColumnStride`): false uses the bare block width.
    nonisolated(unsafe) static var padColumns = true

    /// Runs `body(item, lane)` for every item: contiguous runs per lane in parallel, or serially
    /// (the body then splits its GEMMs over `gemmThreads`).
    static func run(_ s: Schedule, itemsOf imagesOnly: Bool = false, _ body: (Int, Int) -> Void) {
        if s.lanes > 1 {
            let units = imagesOnly ? s.items / s.blocksPerImage : s.items
            let per = imagesOnly ? s.blocksPerImage : 1
            Threads.parallelFor(s.lanes) { lane in
                let lo = lane * units / s.lanes, hi = (lane + 1) * units / s.lanes
                for item in (lo * per)..<(hi * per) { body(item, lane) }
            }
        } else {
            for item in 0..<s.items { body(item, 0) }
        }
    }

    /// Splits `channels` channels over the threads when the block is large (serial schedules only).
    static func forChannels(_ channels: Int, work: Int, parallel: Bool, _ body: (Range<Int>) -> Void) {
        let threads = Threads.count
        if !parallel || threads == 1 || work < (1 << 17) || channels < 2 {
            body(0..<channels)
            return
        }
        let chunks = Swift.min(channels, 4 * threads)
        Threads.parallelFor(chunks) { c in
            let lo = c * channels / chunks, hi = (c + 1) * channels / chunks
            if lo < hi { body(lo..<hi) }
        }
    }

    // MARK: Forward

    /// `output = conv(input, weight) + bias`. Buffers: input `[N, Cin, H, W]`, weight
    /// `[Cout, Cin, kh, kw]`, bias `[Cout]` or nil, output `[N, Cout, outH, outW]` (overwritten).
    public static func forward(_ g: ConvGeometry, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>) {
        precondition(g.isValid, "ConvolutionKernels.forward: invalid geometry \(g)")
        if g.batch == 0 { return }
        if TapConvolution.applies(to: g),
           TapConvolution.forward(g, input: input, weight: weight, bias: bias, output: output) { return }
        let pixels = g.outPixels, k = g.columnRows, m = g.outChannels
        let inImage = g.inChannels * g.inPixels, outImage = m * pixels
        let pointwise = g.isPointwise
        let s = schedule(g, floatsPerPixel: pointwise ? 0 : k)
        ConvolutionWorkspace.withBuffer(floats: s.lanes * s.laneFloats) { ws in
            run(s) { item, lane in
                let (image, range) = s.pixels(ofItem: item, total: pixels)
                let n = range.count
                let x = input + image * inImage
                let y = output + image * outImage + range.lowerBound
                if let bias {
                    for co in 0..<m { (y + co * pixels).update(repeating: bias[co], count: n) }
                }
                let b: UnsafePointer<Float>, ldb: Int
                if pointwise {
                    b = x + range.lowerBound; ldb = pixels
                } else {
                    let col = ws + lane * s.laneFloats
                    forChannels(g.inChannels, work: k * n, parallel: s.lanes == 1) { channels in
                        Im2Col.im2col(x, g, pixels: range, channels: channels, into: col, stride: s.columnStride)
                    }
                    b = UnsafePointer(col); ldb = s.columnStride
                }
                Gemm.sgemm(m: m, n: n, k: k, a: weight, lda: k, b: b, ldb: ldb,
                           beta: bias == nil ? 0 : 1, c: y, ldc: pixels, threads: s.gemmThreads)
            }
        }
    }

    // MARK: Backward data

    /// `inputGradient = conv^T(outputGradient)` (the gradient of the input; overwritten), plus
    /// `addingBias[c]` on every pixel of channel c when given (for a transposed convolution's bias).
    /// Buffers: outputGradient `[N, Cout, outH, outW]`, weight `[Cout, Cin, kh, kw]`,
    /// inputGradient `[N, Cin, H, W]`, addingBias `[Cin]`.
    public static func backwardData(_ g: ConvGeometry, outputGradient: UnsafePointer<Float>,
                                    weight: UnsafePointer<Float>, inputGradient: UnsafeMutablePointer<Float>,
                                    addingBias: UnsafePointer<Float>? = nil) {
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
            let s = schedule(g, floatsPerPixel: 0)
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
            let s = schedule(g, floatsPerPixel: k)
            ConvolutionWorkspace.withBuffer(floats: s.lanes * s.laneFloats) { ws in
                run(s) { item, lane in
                    let (image, range) = s.pixels(ofItem: item, total: pixels)
                    let n = range.count
                    let col = ws + lane * s.laneFloats
                    Gemm.sgemm(transposeA: true, m: k, n: n, k: m, a: weight, lda: k,
                               b: outputGradient + image * outImage + range.lowerBound, ldb: pixels,
                               c: col, ldc: s.columnStride, threads: s.gemmThreads)
                    forChannels(g.inChannels, work: k * n, parallel: s.lanes == 1) { channels in
                        scatter(col, g, pixels: range, channels: channels, stride: s.columnStride, into: inputGradient + image * inImage,
                                bias: addingBias)
                    }
                }
            }
            return
        }

        if let flipped = transposedGeometry(g), useTransposedForward(g) {
            // A forward convolution of the output gradient: no column matrix of Cin*kh*kw rows to
            // write and scatter back, no zero fill (see `transposedGeometry`).
            let count = g.inChannels * g.outChannels * g.kernelHeight * g.kernelWidth
            ConvolutionWorkspace.withBuffer(floats: count) { w in
                flipKernel(weight, g, into: w)
                forward(flipped, input: outputGradient, weight: w, bias: addingBias, output: inputGradient)
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
            // Small blocks pay here only for the thinnest GEMMs (inner dimension Cout <= 16;
            // measured slower at 32 and 64 in testSmallGemmBlocks, col2im then runs on short rows).
            let small = g.outChannels <= 16
            let byImage = schedule(g, floatsPerPixel: k, imagesOnly: true, smallBlocks: small)
            if byImage.lanes == 1 && Threads.count > 1 {
                let split = schedule(g, floatsPerPixel: k, smallBlocks: small)
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
                forChannels(g.inChannels, work: k * n, parallel: s.lanes == 1) { channels in
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

    /// Tuning switch (benchmarks and tests): nil chooses per shape (`useTransposedForward`), true or
    /// false forces backward-data through the forward kernel (where the geometry allows) or through
    /// column matrix + col2im.
    nonisolated(unsafe) public static var backwardDataAsForward: Bool? = nil

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

    /// Whether backward-data should run as that forward convolution: its column matrix has Cout*kh*kw
    /// rows instead of Cin*kh*kw and needs no col2im scatter. Measured on every 3x3 convolution of
    /// the base-16 and base-64 U-Nets (ConvolutionTuning.testBackwardDataPaths, docs/PERFORMANCE.md):
    /// 1.02-1.45x faster where Cin > Cout (the decoder's convolutions on concatenated inputs),
    /// 0.7-0.99x elsewhere through im2col, so only there. Where the flipped convolution runs as tap GEMMs (`TapConvolution`) it is used whatever the
    /// channel counts: 1.2-1.4x faster than column matrix + col2im on the base-16 encoder layers.
    static func useTransposedForward(_ g: ConvGeometry) -> Bool {
        backwardDataAsForward ?? (g.outChannels < g.inChannels
            || transposedGeometry(g).map(TapConvolution.applies) == true)
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

    // MARK: Backward weight

    /// `weightGradient = sum over images and pixels of dY . col^T` and `biasGradient[c] = sum of
    /// outputGradient over images and pixels of channel c` (each overwritten; pass nil to skip).
    public static func backwardWeight(_ g: ConvGeometry, input: UnsafePointer<Float>,
                                      outputGradient: UnsafePointer<Float>,
                                      weightGradient: UnsafeMutablePointer<Float>?,
                                      biasGradient: UnsafeMutablePointer<Float>?) {
        precondition(g.isValid, "ConvolutionKernels.backwardWeight: invalid geometry \(g)")
        let pixels = g.outPixels, k = g.columnRows, m = g.outChannels
        if let biasGradient {
            channelSums(outputGradient, batch: g.batch, channels: m, pixels: pixels, into: biasGradient)
        }
        guard let dw = weightGradient else { return }
        if g.batch == 0 { dw.update(repeating: 0, count: m * k); return }
        if TapConvolution.applies(to: g),
           TapConvolution.backwardWeight(g, input: input, outputGradient: outputGradient, weightGradient: dw) { return }
        let inImage = g.inChannels * g.inPixels, outImage = m * pixels
        let pointwise = g.isPointwise
        let s = schedule(g, floatsPerPixel: pointwise ? 0 : k)
        let transposed = useTransposedWeightGradient(g)
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
                let b: UnsafePointer<Float>, ldb: Int
                if pointwise {
                    b = x + range.lowerBound; ldb = pixels
                } else {
                    let col = ws + lane * s.laneFloats
                    forChannels(g.inChannels, work: k * n, parallel: s.lanes == 1) { channels in
                        Im2Col.im2col(x, g, pixels: range, channels: channels, into: col, stride: s.columnStride)
                    }
                    b = UnsafePointer(col); ldb = s.columnStride
                }
                if transposed {
                    // dW^T[K, Cout] += col[K, n] . dY^T[n, Cout]
                    let dyT = dyScratch + lane * dyFloats
                    CopyKernels.transpose(dy, rows: m, columns: n, sourceStride: pixels, into: dyT, destinationStride: m,
                                            parallel: s.lanes == 1)
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

    /// Tuning switch (benchmarks and tests): nil chooses per shape (`useTransposedWeightGradient`),
    /// true or false forces one form of the weight-gradient GEMM.
    nonisolated(unsafe) public static var weightGradientTransposed: Bool? = nil

    /// Whether the weight gradient is computed as `dW^T = col . dY^T` (a plain GEMM, after transposing
    /// each block of the output gradient) rather than `dW = dY . col^T`. OpenBLAS reads the transposed
    /// column operand of the second form slowly (58 vs 109-115 GFLOP/s for 16 output channels on this
    /// machine, and its small-matrix kernels refuse that form). In place (testSmallGemmBlocks) it
    /// wins for up to 32 output channels and loses ~5 % for 128-256, so only there.
    static func useTransposedWeightGradient(_ g: ConvGeometry) -> Bool {
        weightGradientTransposed ?? (g.outChannels <= 32)
    }

    /// `sums[c] = sum over images and pixels of x[n, c, pixel]` for `x` `[batch, channels, pixels]`.
    public static func channelSums(_ x: UnsafePointer<Float>, batch: Int, channels: Int, pixels: Int,
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
