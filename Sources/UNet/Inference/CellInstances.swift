import Foundation
import Tensor

/// Cell instances from a cell-probability map: one id per cell, 0 for membrane, from the seeded
/// watershed whose segments the V_rand and V_info scores compare (`ISBIMetrics.proposal`), at a
/// threshold chosen on validation data (`unet evaluate --store-threshold`).
public enum CellInstances {
    /// The instance labels of one page: `ISBIMetrics.proposal` (cells 1...count, membrane 0).
    public static func labels(cellProbability: ImagePlane, threshold: Float) -> Segmentation {
        ISBIMetrics.proposal(cellProbability: cellProbability, threshold: threshold)
    }

    /// An RGB picture of `segmentation` (`width * height * 3` bytes): membrane black, every cell a
    /// colour drawn from its id and `seed` (bright, so that cells stand out from the membrane;
    /// neighbours almost always differ).
    public static func previewRGB(_ segmentation: Segmentation, seed: UInt64 = 2012) -> [UInt8] {
        var palette = [UInt8](repeating: 0, count: 3 * (segmentation.segmentCount + 1))
        var rng = SeededGenerator(seed: seed)
        for id in stride(from: 1, through: segmentation.segmentCount, by: 1) {
            for c in 0..<3 { palette[3 * id + c] = UInt8(64 + rng.next() % 192) }
        }
        var rgb = [UInt8](repeating: 0, count: 3 * segmentation.labels.count)
        for (i, id) in segmentation.labels.enumerated() where id > 0 {
            let p = 3 * Int(id)
            rgb[3 * i] = palette[p]; rgb[3 * i + 1] = palette[p + 1]; rgb[3 * i + 2] = palette[p + 2]
        }
        return rgb
    }

    /// Writes `previewRGB(segmentation)` as a PNG, atomically.
    public static func writePreview(_ segmentation: Segmentation, to url: URL, seed: UInt64 = 2012) throws {
        try PNG.write(rgb: previewRGB(segmentation, seed: seed), width: segmentation.width, height: segmentation.height, to: url)
    }
}

/// Writes the instance labels of a stack's pages, in order, as a 32-bit unsigned TIFF: the cells
/// of page k get the ids after those of pages 0...k-1, so every cell of the stack has its own id.
///
/// ```swift
/// let writer = try InstanceStackWriter(path: "instances.tif", width: 512, height: 512, pages: 30, threshold: 0.5)
/// for page in 0..<30 { try writer.append(cellProbability: probabilityOf(page)) }
/// try writer.finish()
/// ```
public final class InstanceStackWriter {
    /// The watershed threshold on the cell probability.
    public let threshold: Float
    /// Cells written so far (the last id used).
    public private(set) var cellCount: UInt32 = 0
    private let writer: TIFFPageWriter

    /// Creates the output (a temporary file until `finish()`). Throws `TIFFError` for an unwritable
    /// path; `threshold` must lie in [0, 1].
    public init(path: String, width: Int, height: Int, pages: Int, threshold: Float) throws {
        precondition(threshold >= 0 && threshold <= 1, "InstanceStackWriter: threshold \(threshold) outside [0, 1]")
        self.threshold = threshold
        writer = try TIFFPageWriter(path: path, width: width, height: height, pages: pages, format: .uint32)
    }

    /// Labels the next page from its cell probabilities and writes it; returns the page's own
    /// labelling (ids from 1, before the stack's offset), for previews.
    @discardableResult
    public func append(cellProbability: ImagePlane) throws -> Segmentation {
        let segmentation = CellInstances.labels(cellProbability: cellProbability, threshold: threshold)
        let offset = cellCount
        guard UInt64(offset) + UInt64(segmentation.segmentCount) <= UInt64(UInt32.max) else {
            throw TIFFError(.writeFailed, path: writer.path, message: "more than \(UInt32.max) cells: the ids do not fit 32 bits")
        }
        try writer.write(labels: segmentation.labels.map { $0 == 0 ? 0 : offset + UInt32($0) })
        cellCount += UInt32(segmentation.segmentCount)
        return segmentation
    }

    /// Completes the file (all pages written) and renames it into place.
    public func finish() throws { try writer.finish() }
}
