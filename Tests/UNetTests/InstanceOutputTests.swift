import CTIFF
import CTIFFShim
import Foundation
import NN
@testable import UNet
import XCTest

/// Instance output (issue 15): 32-bit unsigned TIFF pages, cell instances from the V_rand
/// watershed with stack-wide ids, their colour preview, the stored threshold, and the
/// cross-validation summary.
final class InstanceOutputTests: XCTestCase {
    /// The samples of every page of a 32-bit unsigned TIFF, read through libtiff without our reader.
    func rawUInt32Pages(_ path: String) throws -> [[UInt32]] {
        guard let tif = TIFFOpen(path, "r") else { throw XCTSkip("libtiff cannot open \(path)") }
        defer { TIFFClose(tif) }
        var pages: [[UInt32]] = []
        repeat {
            var width: UInt32 = 0, height: UInt32 = 0
            XCTAssertEqual(ctiff_get_u32(tif, UInt32(TIFFTAG_IMAGEWIDTH), &width), 1)
            XCTAssertEqual(ctiff_get_u32(tif, UInt32(TIFFTAG_IMAGELENGTH), &height), 1)
            var bits: UInt16 = 0, format: UInt16 = 0
            XCTAssertEqual(ctiff_get_u16(tif, UInt32(TIFFTAG_BITSPERSAMPLE), &bits), 1)
            XCTAssertEqual(ctiff_get_u16(tif, UInt32(TIFFTAG_SAMPLEFORMAT), &format), 1)
            XCTAssertEqual(bits, 32)
            XCTAssertEqual(Int32(format), SAMPLEFORMAT_UINT)
            var page = [UInt32](repeating: 0, count: Int(width * height))
            page.withUnsafeMutableBufferPointer { buffer in
                for row in 0..<Int(height) {
                    XCTAssertEqual(TIFFReadScanline(tif, buffer.baseAddress! + row * Int(width), UInt32(row), 0), 1)
                }
            }
            pages.append(page)
        } while TIFFReadDirectory(tif) == 1
        return pages
    }

    func testUInt32PagesRoundTripExactlyInEveryCompression() throws {
        let folder = makeTemporaryFolder(self)
        let labels: [[UInt32]] = [[0, 1, 2, 16_777_217, UInt32.max, 7], [3, 3, 3, 0, 0, 4_000_000_000]]
        for compression in TIFFCompression.allCases {
            let path = folder.appendingPathComponent("labels-\(compression.rawValue).tif").path
            let writer = try TIFFPageWriter(path: path, width: 3, height: 2, pages: 2, format: .uint32, compression: compression)
            for page in labels { try writer.write(labels: page) }
            try writer.finish()
            XCTAssertEqual(try rawUInt32Pages(path), labels, "\(compression)")
            // Our reader accepts the format (as Float: exact below 2^24).
            let stack = try ImageStack.read(path: path)
            XCTAssertEqual(stack.format, .uint32)
            XCTAssertEqual(Array(stack.page(0).prefix(3)), [0, 1, 2])
        }
        // Float pages are rounded and clamped to the 32-bit range (2^32 and beyond, NaN, negatives).
        let path = folder.appendingPathComponent("floats.tif").path
        try ImageStack(width: 6, height: 1, pages: 1, pixels: [-5, 0.4, 7.6, 5e9, .nan, 4_294_967_296], format: .float32)
            .write(path: path, format: .uint32)
        XCTAssertEqual(try rawUInt32Pages(path), [[0, 0, 8, UInt32.max, 0, UInt32.max]])
    }

    func testLabelPagesRejectWrongFormatsAndSizes() throws {
        let folder = makeTemporaryFolder(self)
        let floats = try TIFFPageWriter(path: folder.appendingPathComponent("f.tif").path, width: 2, height: 2, pages: 1, format: .float32)
        XCTAssertThrowsError(try floats.write(labels: [1, 2, 3, 4])) {
            XCTAssertTrue("\($0)".contains("integer labels need a uint32 file, this one is float32"), "\($0)")
        }
        let ints = try TIFFPageWriter(path: folder.appendingPathComponent("u.tif").path, width: 2, height: 2, pages: 1, format: .uint32)
        XCTAssertThrowsError(try ints.write(labels: [1, 2, 3])) { XCTAssertTrue("\($0)".contains("expected 2 x 2 = 4"), "\($0)") }
        try ints.write(labels: [1, 2, 3, 4])
        XCTAssertThrowsError(try ints.write(labels: [1, 2, 3, 4])) { XCTAssertTrue("\($0)".contains("more than the 1 page"), "\($0)") }
    }

    /// Two cells (left and right) split by a membrane column, on a 9 x 5 page.
    static func twoCells(swap: Bool = false) -> ImagePlane {
        var pixels = [Float](repeating: 0.9, count: 45)
        for y in 0..<5 { pixels[y * 9 + 4] = 0.05 }
        if swap { pixels[0] = 0.95 }
        return ImagePlane(width: 9, height: 5, pixels: pixels)
    }

    func testInstancesAreTheVRandWatershedWithStackWideIds() throws {
        let page = Self.twoCells()
        let cells = CellInstances.labels(cellProbability: page, threshold: 0.5)
        XCTAssertEqual(cells, ISBIMetrics.proposal(cellProbability: page, threshold: 0.5), "the same watershed as V_rand")
        XCTAssertEqual(cells.segmentCount, 2)
        XCTAssertEqual(cells.labels[0], 1)
        XCTAssertEqual(cells.labels[8], 2)
        XCTAssertEqual((0..<5).map { cells.labels[$0 * 9 + 4] }, [0, 0, 0, 0, 0], "membrane is 0")

        let path = makeTemporaryFolder(self).appendingPathComponent("instances.tif").path
        let writer = try InstanceStackWriter(path: path, width: 9, height: 5, pages: 3, threshold: 0.5)
        try writer.append(cellProbability: page)
        try writer.append(cellProbability: ImagePlane(width: 9, height: 5, pixels: [Float](repeating: 0.1, count: 45)))
        let third = try writer.append(cellProbability: page)
        XCTAssertEqual(third.segmentCount, 2)
        try writer.finish()
        XCTAssertEqual(writer.cellCount, 4)
        let pages = try rawUInt32Pages(path)
        XCTAssertEqual(pages.count, 3)
        XCTAssertEqual(Set(pages[0]), [0, 1, 2])
        XCTAssertEqual(Set(pages[1]), [0], "a page without cells")
        XCTAssertEqual(Set(pages[2]), [0, 3, 4], "the third page's cells follow the first's")
        XCTAssertEqual(pages[2].map { $0 == 0 ? 0 : $0 - 2 }, pages[0])
    }

    func testPreviewColoursEachCellOnceAndLeavesMembraneBlack() throws {
        let cells = CellInstances.labels(cellProbability: Self.twoCells(), threshold: 0.5)
        let rgb = CellInstances.previewRGB(cells)
        XCTAssertEqual(rgb.count, 45 * 3)
        func colour(_ i: Int) -> [UInt8] { Array(rgb[(3 * i)..<(3 * i + 3)]) }
        for i in 0..<45 {
            if cells.labels[i] == 0 {
                XCTAssertEqual(colour(i), [0, 0, 0])
            } else {
                XCTAssertEqual(colour(i), colour(cells.labels[i] == 1 ? 0 : 8), "pixel \(i)")
                XCTAssertTrue(colour(i).allSatisfy { $0 >= 64 }, "bright colours")
            }
        }
        XCTAssertNotEqual(colour(0), colour(8), "the two cells differ")
        let url = makeTemporaryFolder(self).appendingPathComponent("preview.png")
        try CellInstances.writePreview(cells, to: url)
        let png = try PNG.read(from: url)
        XCTAssertEqual(png.width, 9)
        XCTAssertEqual(png.pixels, rgb)
        XCTAssertEqual(CellInstances.previewRGB(Segmentation(width: 2, height: 1, labels: [0, 0])), [0, 0, 0, 0, 0, 0])
    }

    func testEvaluationReportsTheVRandThresholdAndItIsStoredInTheCheckpoint() throws {
        let folder = makeTemporaryFolder(self)
        let data = try SyntheticEM(width: 64, height: 64, seed: 3).dataset(trainCount: 6)
        var rng = SeededGenerator(seed: 1)
        let model = UNetModel(configuration: UNetConfiguration(baseFilters: 4, depth: 2), generator: &rng)
        var c = TrainingConfiguration()
        c.epochs = 1; c.tileSize = 32; c.batchSize = 2; c.learningRate = 3e-3; c.previewEvery = 0; c.validationTileSize = 64
        let trainer = try Trainer(model: model, trainSlices: data.train, validationSlices: data.validation,
                                  configuration: c, runFolder: folder)
        try trainer.run()
        let segmenter = Segmenter(model: try CheckpointSummary.load(from: trainer.bestCheckpoint).makeModel(), tileSize: 64)
        let result = segmenter.evaluate(data.validation)
        let maps = data.validation.map { segmenter.classProbability($0.imagePlane) }
        let isbi = ISBIMetrics.evaluate(cellProbabilities: maps, labels: data.validation.map(\.labelPlane))
        XCTAssertEqual(result.vRandThreshold, isbi.vRandThreshold)
        XCTAssertEqual(result.vRand!, isbi.vRand, accuracy: 1e-12)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(result)) as? [String: Any]
        XCTAssertNotNil(json?["v_rand_threshold"])

        let path = trainer.bestCheckpoint.path
        let before = try SafeTensors.read(from: path)
        XCTAssertNil(try CheckpointSummary.load(path: path).storedThreshold)
        try CheckpointSummary.storeThreshold(0.7, source: "V_rand on slices 5", in: path)
        let after = try CheckpointSummary.load(path: path)
        XCTAssertEqual(after.storedThreshold, 0.7)
        XCTAssertEqual(after.metadata[MetadataKey.thresholdSource], "V_rand on slices 5")
        let reread = try SafeTensors.read(from: path)
        XCTAssertEqual(reread.tensors.map(\.name), before.tensors.map(\.name))
        for (a, b) in zip(reread.tensors, before.tensors) { XCTAssertEqual(a.tensor.scalars, b.tensor.scalars, a.name) }
        XCTAssertNoThrow(try after.makeModel())
        _ = try Trainer.resuming(from: trainer.bestCheckpoint, trainSlices: data.train, validationSlices: data.validation,
                                 runFolder: folder, epochs: 2)
        // A stored value that is not a threshold reads as none.
        for bad in ["1.5", "-0.1", "nan", "half"] {
            var metadata = reread.metadata
            metadata[MetadataKey.threshold] = bad
            try SafeTensors(tensors: reread.tensors, metadata: metadata).write(to: path)
            XCTAssertNil(try CheckpointSummary.load(path: path).storedThreshold, bad)
        }
    }

    func testSummaryGivesMeanAndSampleStandardDeviation() throws {
        func result(_ j: Double, vRand: Double?) -> EvaluationResult {
            EvaluationResult(cost: 0.2, accuracy: 0.9, jaccard: [j, j + 0.2], meanJaccard: j + 0.1, dice: [0.8, 0.9],
                             meanDice: 0.85, vRand: vRand, vInfo: nil, vRandThreshold: nil)
        }
        let summary = try EvaluationSummary(results: [result(0.6, vRand: 0.97), result(0.7, vRand: nil), result(0.8, vRand: 0.99)])
        XCTAssertEqual(summary.evaluations, 3)
        XCTAssertEqual(summary.rows.map(\.name), ["cost", "accuracy", "jaccard_0", "jaccard_1", "mean_jaccard", "dice_0", "dice_1",
                                                  "mean_dice", "v_rand"])
        XCTAssertEqual(summary["mean_jaccard"]!.mean, 0.8, accuracy: 1e-12)
        XCTAssertEqual(summary["mean_jaccard"]!.standardDeviation, 0.1, accuracy: 1e-12)   // sqrt(0.02 / 2)
        XCTAssertEqual(summary["cost"]!.standardDeviation, 0, accuracy: 1e-12)
        XCTAssertEqual(summary["v_rand"]!.count, 2, "only the evaluations that have the score")
        XCTAssertEqual(summary["v_rand"]!.mean, 0.98, accuracy: 1e-12)
        XCTAssertThrowsError(try EvaluationSummary(results: [result(0.6, vRand: nil)])) {
            XCTAssertEqual($0 as? EvaluationSummaryError, .tooFew(1))
        }
        var threeClasses = result(0.5, vRand: nil)
        threeClasses.jaccard.append(0.1)
        XCTAssertThrowsError(try EvaluationSummary(results: [result(0.6, vRand: nil), threeClasses])) {
            XCTAssertTrue("\($0)".contains("evaluation 2 has 3 class(es), the first has 2"), "\($0)")
        }
    }
}
