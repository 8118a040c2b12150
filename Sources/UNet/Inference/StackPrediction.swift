import Foundation
import Tensor

extension Segmenter {
    /// The input tile side that predicts a `width` x `height` page in one tile (the page plus its
    /// context margin on every side), when the network's activations for it fit in
    /// `memoryBudgetBytes`; otherwise `partialTileSize(configuration:)`, which cuts the page into
    /// overlapping tiles. Both give the same probabilities; one tile does no work twice.
    public static func automaticTileSize(width: Int, height: Int, configuration: UNetConfiguration,
                                         memoryBudgetBytes: Int = 3 << 30) -> Int {
        let whole = max(width, height) + 2 * configuration.tileGeometry.contextMargin
        return inferenceBytes(tileSize: whole, configuration: configuration) <= memoryBudgetBytes
            ? whole : partialTileSize(configuration: configuration)
    }

    /// The tile side for pages cut into tiles: 512, or the smallest tile whose kept core is at
    /// least as wide as the context margin when 512 keeps less (depth 5 and deeper). A 512 tile at
    /// depth 5 keeps a 64-pixel core of its 512 (the margin is 224), so a 512^2 page would take
    /// 64 tiles; 704 keeps 256 and takes 4.
    public static func partialTileSize(configuration: UNetConfiguration) -> Int {
        let geometry = configuration.tileGeometry
        let wanted = 3 * geometry.contextMargin + geometry.alignment
        return max(512, geometry.inputSize(atLeast: wanted)?.input ?? 512)
    }

    /// An estimate of the memory an inference forward pass of one `tileSize`^2 tile holds at its peak:
    /// about 18 floats per pixel and first-level filter (the full-resolution feature maps alive at
    /// once, with the deeper levels' smaller ones), fitted to `unet bench infer` at base 16 and 64.
    static func inferenceBytes(tileSize: Int, configuration: UNetConfiguration) -> Int {
        18 * MemoryLayout<Float>.size * tileSize * tileSize * configuration.baseFilters
    }

    /// Predicts the cell probability (1 = cell) of every page of the TIFF stack `input` into a 32-bit
    /// float TIFF at `output`, one page at a time: memory holds one page and the model whatever the
    /// stack's length, and an output past 4 GiB is written as BigTIFF. Pages are normalized as
    /// `ImageStack.normalized()` normalizes the whole stack.
    ///
    /// With a `collective` of K processes, page i is predicted by rank i mod K and rank 0 writes
    /// every page, in order, into the one output file; every rank calls this with the same
    /// arguments and must be able to read `input`. The output equals a single process's byte for
    /// byte at the same thread count per process.
    ///
    /// A model with 2.5D context (`contextSlices` = N) reads each page's neighbours z-N ... z+N
    /// (mirrored at the stack's ends); a rank keeps at most 2N+1 pages in memory, reusing those its
    /// next page shares with the current one.
    ///
    /// - Parameters:
    ///   - onPage: called on the rank that predicted a page, with its index, normalized image and
    ///     probabilities (for previews).
    ///   - onWritten: called on rank 0 after each page is written, in page order, with its index and
    ///     cell probabilities (for instance labels, `InstanceStackWriter`).
    ///   - progress: called on rank 0 after each page is written, with (done, total).
    /// - Returns: the stack's page count, width and height.
    /// - Throws: `TIFFError` for an unreadable input or an unwritable output, and
    ///   `ISBIDatasetError.nonFiniteIntensity` for a NaN or infinite pixel in a float input.
    @discardableResult
    public func predictPages(input: String, output: String, collective: Collective = SingleProcess(),
                             onPage: ((Int, ImagePlane, [Float]) throws -> Void)? = nil,
                             onWritten: ((Int, [Float]) throws -> Void)? = nil,
                             progress: ((Int, Int) -> Void)? = nil) throws -> (pages: Int, width: Int, height: Int) {
        let reader = try TIFFPageReader(path: input)
        let normalization = try IntensityNormalization(of: reader)
        let (width, height, pages) = (reader.width, reader.height, reader.pages)
        let writer = collective.isLeader
            ? try TIFFPageWriter(path: output, width: width, height: height, pages: pages, format: .float32) : nil
        let radius = model.configuration.contextSlices
        // Normalized pages by index: the current page's context window, nothing more.
        var window: [Int: [Float]] = [:]
        func normalizedPage(_ index: Int) throws -> [Float] {
            if let pixels = window[index] { return pixels }
            var pixels = try reader.readPage(index)
            if reader.format == .float32, let i = pixels.firstIndex(where: { !$0.isFinite }) {
                throw ISBIDatasetError.nonFiniteIntensity(file: input, page: index, value: pixels[i],
                                                          x: i % width, y: i / width)
            }
            pixels.withUnsafeMutableBufferPointer { normalization.apply(to: $0) }
            window[index] = pixels
            return pixels
        }
        for page in 0..<pages {
            let owner = page % collective.size
            if owner == collective.rank {
                let needed = SliceContext.indices(of: page, radius: radius, pages: pages)
                window = window.filter { needed.contains($0.key) }
                let planes = try needed.map(normalizedPage)
                let image = ImagePlane(width: width, height: height, pixels: planes[radius])
                let probability = classProbability(planes: planes, width: width, height: height).pixels
                try onPage?(page, image, probability)
                if let writer {
                    try writer.write(probability)
                    try onWritten?(page, probability)
                } else {
                    probability.withUnsafeBytes { collective.send($0, to: 0) }
                }
            } else if let writer {
                var probability = [Float](repeating: 0, count: width * height)
                probability.withUnsafeMutableBytes { collective.receive($0, from: owner) }
                try writer.write(probability)
                try onWritten?(page, probability)
            }
            if collective.isLeader { progress?(page + 1, pages) }
        }
        try writer?.finish()
        return (pages, width, height)
    }
}
