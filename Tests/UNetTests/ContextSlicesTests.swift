import Foundation
import NN
@testable import UNet
import XCTest

/// 2.5D context (`--context-slices`): neighbour indices mirrored at the stack's ends, the channel
/// stack of training tiles (one transform for every plane), and a context model that trains, predicts
/// a whole stack and streams it page by page to the same result.
final class ContextSlicesTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("unet-context-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func testNeighboursAreMirroredAtTheStacksEnds() {
        XCTAssertEqual(SliceContext.indices(of: 0, radius: 1, pages: 30), [1, 0, 1])
        XCTAssertEqual(SliceContext.indices(of: 29, radius: 1, pages: 30), [28, 29, 28])
        XCTAssertEqual(SliceContext.indices(of: 14, radius: 2, pages: 30), [12, 13, 14, 15, 16])
        XCTAssertEqual(SliceContext.indices(of: 0, radius: 2, pages: 3), [2, 1, 0, 1, 2])
        XCTAssertEqual(SliceContext.indices(of: 1, radius: 2, pages: 2), [1, 0, 1, 0, 1], "periodic beyond the stack")
        XCTAssertEqual(SliceContext.indices(of: 0, radius: 3, pages: 1), [0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(SliceContext.indices(of: 4, radius: 0, pages: 9), [4])
    }

    /// An 8-bit stack whose page k is `base + 10 k` (normalized: `+ 10 k / 255`): any warp that interpolates (weights summing to 1) keeps
    /// the planes exactly `k - z` apart, which shows the same transform was applied to all.
    static func shiftedStack(pages: Int, side: Int) throws -> ISBIDataset {
        let synthetic = SyntheticEM(width: side, height: side, seed: 5).stacks(count: pages)
        let base = Array(synthetic.volume.pixels[0..<(side * side)])
        var pixels: [Float] = []
        for k in 0..<pages { pixels += base.map { ($0 / 2).rounded(.down) + Float(k * 10) } }   // 0 ... 127 + 10 k
        let volume = ImageStack(width: side, height: side, pages: pages, pixels: pixels, format: .uint8)
        return try ISBIDataset(volume: volume, labels: synthetic.labels, validationSlices: (pages - 1)...(pages - 1),
                               contextSlices: 1)
    }

    func testDatasetAttachesNeighbourImagesAcrossTheSplit() throws {
        let data = try Self.shiftedStack(pages: 5, side: 16)
        XCTAssertEqual(data.validation.map(\.index), [4])
        let validation = data.validation[0]
        // Slice 4's context is slices 3 (a training slice: its image only), 4 and 3 (mirrored).
        XCTAssertEqual(validation.contextImages, [data.slices[3].image, validation.image, data.slices[3].image])
        XCTAssertEqual(data.train[0].inputPlanes, [data.slices[1].image, data.slices[0].image, data.slices[1].image])
        XCTAssertEqual(try ISBIDataset(volume: ImageStack(width: 4, height: 4, pages: 2, pixels: [Float](repeating: 1, count: 32)),
                                       labels: ImageStack(width: 4, height: 4, pages: 2, pixels: [Float](repeating: 255, count: 32)))
                        .slices[0].inputPlanes.count, 1, "no context by default")
    }

    func testTrainingTilesStackThePlanesUnderOneTransform() throws {
        let data = try Self.shiftedStack(pages: 4, side: 48)
        let context = BatchSampler(slices: data.train, batchSize: 3, inputSize: 32, outputSize: 32, augment: true,
                                   loss: .crossEntropy, seed: 9)
        XCTAssertEqual(context.channels, 3)
        let plain = BatchSampler(slices: data.train.map { var s = $0; s.contextImages = []; return s }, batchSize: 3,
                                 inputSize: 32, outputSize: 32, augment: true, loss: .crossEntropy, seed: 9)
        let batch = context.batch(epoch: 2, index: 1)
        let single = plain.batch(epoch: 2, index: 1)
        XCTAssertEqual(batch.images.shape, [3, 3, 32, 32])
        XCTAssertEqual(batch.targets.scalars, single.targets.scalars, "the labels are the centre slice's, as without context")
        let n = 32 * 32
        let values = batch.images.scalars, centres = single.images.scalars
        for tile in 0..<3 {
            let centre = Array(values[((tile * 3 + 1) * n)..<((tile * 3 + 2) * n)])
            XCTAssertEqual(centre, Array(centres[(tile * n)..<((tile + 1) * n)]), "tile \(tile): the centre plane is the image")
            // Which slice the tile came from: its centre plane sits 10 * z above the base image.
            let above = Array(values[((tile * 3) * n)..<((tile * 3 + 1) * n)])
            let below = Array(values[((tile * 3 + 2) * n)..<((tile * 3 + 3) * n)])
            let offsets = zip(above, centre).map { $0 - $1 } + zip(below, centre).map { $0 - $1 }
            // z-1 and z+1 are a step below and above, except at slice 0, mirrored to 1 and 1 (both above).
            let step: Float = 10.0 / 255, lower = offsets[0], upper = offsets[n]
            XCTAssertEqual(abs(lower), step, accuracy: 1e-5, "tile \(tile): z-1 offset \(lower)")
            XCTAssertEqual(upper, step, accuracy: 1e-5, "tile \(tile)")
            for (i, o) in offsets.enumerated() where abs(o - (i < n ? lower : upper)) > 1e-5 {
                return XCTFail("tile \(tile) pixel \(i % n): offset \(o), not the same transform on every plane")
            }
        }
    }

    func testContextModelTrainsPredictsAndStreamsTheSameProbabilities() throws {
        let synthetic = SyntheticEM(width: 64, height: 64, seed: 3)
        let (volume, labels) = synthetic.stacks(count: 6)
        let data = try ISBIDataset(volume: volume, labels: labels, contextSlices: 1)
        var rng = SeededGenerator(seed: 1)
        let configuration = UNetConfiguration(baseFilters: 4, depth: 2).withContextSlices(1)
        XCTAssertEqual(configuration.inputChannels, 3)
        let model = UNetModel(configuration: configuration, generator: &rng)
        var c = TrainingConfiguration()
        c.epochs = 1; c.tileSize = 32; c.batchSize = 2; c.learningRate = 3e-3; c.previewEvery = 0; c.validationTileSize = 64
        let trainer = try Trainer(model: model, trainSlices: data.train, validationSlices: data.validation,
                                  configuration: c, runFolder: folder.appendingPathComponent("run"))
        XCTAssertEqual(try trainer.run(), .completed)
        XCTAssertTrue(trainer.history[0].trainCost.isFinite)

        // The checkpoint records the context; the rebuilt model predicts from 3 planes.
        let summary = try CheckpointSummary.load(from: trainer.bestCheckpoint)
        XCTAssertEqual(summary.model.contextSlices, 1)
        XCTAssertTrue(summary.model.summary.contains("context 1 slice(s) above and below"), summary.model.summary)
        let segmenter = Segmenter(model: try summary.makeModel(), tileSize: 64)
        let whole = segmenter.predict(stack: volume.normalized())
        // Page 0 from its planes (1, 0, 1) by hand.
        let normalized = volume.normalized()
        let page0 = segmenter.classProbability(planes: [normalized.page(1), normalized.page(0), normalized.page(1)],
                                               width: 64, height: 64)
        XCTAssertEqual(whole.page(0), page0.pixels)
        // Without its neighbours the page is predicted differently: the context is used.
        let alone = segmenter.classProbability(planes: [normalized.page(0), normalized.page(0), normalized.page(0)], width: 64, height: 64)
        XCTAssertNotEqual(alone.pixels, page0.pixels)

        // Streaming page by page from the TIFF (at most 3 pages held) gives the same probabilities.
        let input = folder.appendingPathComponent("volume.tif")
        try volume.write(to: input, format: .uint8)
        let output = folder.appendingPathComponent("probabilities.tif")
        var seen: [Int] = []
        try segmenter.predictPages(input: input.path, output: output.path, onPage: { page, image, _ in
            seen.append(page)
            XCTAssertEqual(image.pixels, normalized.page(page), "page \(page): the preview image is the page itself")
        })
        XCTAssertEqual(seen, Array(0..<6))
        let streamed = try ImageStack.read(from: output)
        for page in 0..<6 { XCTAssertEqual(streamed.page(page), whole.page(page), "page \(page)") }

        // Evaluation reads the slices' planes too, and scores what the trainer recorded.
        let scored = Segmenter(model: try summary.makeModel(), tileSize: 64).evaluate(data.validation, isbiScores: false)
        XCTAssertEqual(scored.meanJaccard, trainer.history[0].meanValidationJaccard, accuracy: 1e-9)
    }

    func testMismatchedPlanesAndConfigurationsAreRefused() throws {
        let data = try SyntheticEM(width: 64, height: 64, seed: 3).dataset(trainCount: 4)
        var rng = SeededGenerator(seed: 1)
        let model = UNetModel(configuration: UNetConfiguration(baseFilters: 4, depth: 2).withContextSlices(2), generator: &rng)
        XCTAssertThrowsError(try Trainer(model: model, trainSlices: data.train, validationSlices: data.validation,
                                         configuration: TrainingConfiguration(), runFolder: folder)) {
            XCTAssertTrue("\($0)".contains("1 input plane(s), the model takes 5"), "\($0)")
        }
        var bad = UNetConfiguration(baseFilters: 4, depth: 2)
        bad.contextSlices = 1     // inputChannels still 1
        XCTAssertThrowsError(try bad.validate()) { XCTAssertEqual(($0 as? UNetConfigurationError)?.field, "inputChannels") }
        XCTAssertThrowsError(try UNetConfiguration().withContextSlices(9).validate()) {
            XCTAssertEqual(($0 as? UNetConfigurationError)?.field, "contextSlices")
        }
        // A model configuration written before `contextSlices` existed decodes with none.
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(UNetConfiguration(baseFilters: 4))) as! [String: Any]
        XCTAssertNotNil(json.removeValue(forKey: "contextSlices"))
        let old = try JSONDecoder().decode(UNetConfiguration.self, from: JSONSerialization.data(withJSONObject: json))
        XCTAssertEqual(old, UNetConfiguration(baseFilters: 4))
    }
}
