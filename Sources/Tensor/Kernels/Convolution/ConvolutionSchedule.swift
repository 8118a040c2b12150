extension ConvolutionKernels {
    /// How one call's work items (image, block of output pixels) run on the threads.
    struct Schedule {
        /// Output pixels per block.
        var block: Int
        var blocksPerImage: Int
        var items: Int
        /// Threads each running a contiguous run of items with single-threaded BLAS (1: one run).
        var lanes: Int
        /// True when items run one after another with each GEMM, im2col and col2im split over all
        /// threads (the only run then uses them all).
        var splitsOverThreads: Bool
        /// Floats of workspace per lane.
        var laneFloats: Int

        /// Row stride of a block's column matrix: the block width padded so that consecutive rows
        /// do not start at the same offset modulo 4 KiB. With a power-of-two stride (blocks of 512
        /// or 1024 pixels are common) the rows alias in the caches and OpenBLAS packs the operand
        /// much more slowly (docs/PERFORMANCE.md, "Thin GEMMs").
        var columnStride: Int { ConvolutionKernels.paddedStride(block) }

        /// Threads inside each GEMM: all of them when items run one after another, else one.
        var gemmThreads: Int { splitsOverThreads ? Threads.count : 1 }

        func pixels(ofItem item: Int, total: Int) -> (image: Int, range: Range<Int>) {
            let image = item / blocksPerImage, b = item - image * blocksPerImage
            let p0 = b * block
            return (image, p0..<Swift.min(total, p0 + block))
        }
    }

    /// Cuts the output pixels into blocks whose scratch (`floatsPerPixel` floats per pixel) fits the
    /// workspace share of one lane, preferring cache-sized blocks, or blocks within OpenBLAS's
    /// small-matrix limit for thin GEMMs when `smallBlocks` (see `smallGemmPixels`). Block counts are
    /// rounded so the lanes get equal work (and, for `imagesOnly == false` with a batch smaller than
    /// the thread count, so the red-black split of `backwardData` has an even number of runs per lane).
    /// With `imagesOnly`, lanes take whole images.
    static func schedule(_ g: ConvGeometry, floatsPerPixel: Int, imagesOnly: Bool = false, smallBlocks: Bool = true,
                         parallelism: ConvolutionPolicy.Parallelism) -> Schedule {
        let threads = Threads.count
        let pixels = g.outPixels
        let smallPixels = smallBlocks ? smallGemmPixels(g) : nil
        /// Block width and blocks per image when `lanes` lanes share the workspace.
        func blocks(lanes: Int) -> (block: Int, perImage: Int) {
            if floatsPerPixel == 0 {
                // No scratch: split pixels only to give every thread work when the batch is small.
                let perImage = imagesOnly || g.batch >= threads ? 1 : threads
                let block = (pixels + perImage - 1) / perImage
                return (block, (pixels + block - 1) / block)
            }
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
            return (block, (pixels + block - 1) / block)
        }
        if threads > 1 && parallelism != .splitGemm {
            let (block, perImage) = blocks(lanes: threads)
            let items = g.batch * perImage
            // What the lanes divide among themselves.
            let units = imagesOnly ? g.batch : items
            if parallelism == .lanes || units >= threads {
                return Schedule(block: block, blocksPerImage: perImage, items: items, lanes: Swift.max(1, Swift.min(threads, units)),
                                splitsOverThreads: false, laneFloats: paddedStride(block) * floatsPerPixel)
            }
        }
        let (block, perImage) = blocks(lanes: 1)
        return Schedule(block: block, blocksPerImage: perImage, items: g.batch * perImage, lanes: 1,
                        splitsOverThreads: true, laneFloats: paddedStride(block) * floatsPerPixel)
    }

    /// Blocks of this many output pixels keep each of the three GEMMs of `g` within OpenBLAS's
    /// small-matrix limit, or nil when such blocks would be too narrow to pay for a call each.
    ///
    /// OpenBLAS (0.3.16 and later, with the AVX-512 kernels it picks on Skylake-X and later Intel
    /// CPUs and on Zen 4) runs GEMMs with M*N*K <= 100^3 through kernels that read the operands in
    /// place instead of packing them first. For the thin GEMMs of the first and last U-Net levels
    /// (16-64 output channels) the packing copy of the column matrix costs about as much as the
    /// multiply, so blocks within the limit are faster there; much narrower blocks lose more to the
    /// per-call overhead than they save (docs/PERFORMANCE.md, "Tap GEMMs, small-matrix blocks").
    static func smallGemmPixels(_ g: ConvGeometry) -> Int? {
        let pixels = smallGemmLimit / Swift.max(1, g.columnRows * g.outChannels)
        return pixels >= smallGemmMinimumPixels ? pixels : nil
    }
    /// OpenBLAS's bound on M*N*K for its small-matrix kernels (`sgemm_small_kernel_permit`).
    static let smallGemmLimit = 1_000_000
    /// Narrower blocks than this use the packed path.
    static let smallGemmMinimumPixels = 96

    /// `count` rounded up to a multiple of 32 floats (128 bytes) plus 16, so the stride is an odd
    /// multiple of 64 bytes and successive rows fall in different cache sets.
    static func paddedStride(_ count: Int) -> Int { (count + 31) / 32 * 32 + 16 }

    /// Runs `body(item, lane)` for every item: contiguous runs per lane in parallel, or serially
    /// (the body then splits its GEMMs over `gemmThreads`). With `imagesOnly`, runs hold whole images.
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

    /// Splits `channels` channels over the threads when the block is large and `parallel` (items
    /// that run one after another).
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
}
