import Tensor
import UNet
import XCTest

/// `Segmenter(models:)`: an ensemble predicts the mean of its networks' probabilities.
final class SegmenterEnsembleTests: XCTestCase {
    /// A small network in eval mode with non-trivial batch-norm statistics.
    func network(_ configuration: UNetConfiguration, seed: UInt64) -> UNetModel {
        var rng = SeededGenerator(seed: seed)
        let model = UNetModel(configuration: configuration, generator: &rng)
        let channels = configuration.inputChannels
        _ = withoutGradients { model(Tensor.randomUniform([2, channels, 32, 32], generator: &rng)) }
        return model
    }

    func image(seed: UInt64) -> ImagePlane {
        var rng = SeededGenerator(seed: seed)
        return ImagePlane(width: 45, height: 38, pixels: (0..<(45 * 38)).map { _ in rng.nextUnitFloat() })
    }

    func testEnsembleAveragesTheModelsProbabilities() {
        // Different architectures (and so tile geometries) may form an ensemble.
        let a = network(UNetConfiguration(baseFilters: 2, depth: 1), seed: 1)
        let b = network(UNetConfiguration(baseFilters: 4, depth: 2), seed: 2)
        let c = network(UNetConfiguration(baseFilters: 2, depth: 2, activation: .relu), seed: 3)
        let picture = image(seed: 4)
        let singles = [a, b, c].map { Segmenter(model: $0, tileSize: 32).probabilities(picture) }
        let ensemble = Segmenter(models: [a, b, c], tileSize: 32).probabilities(picture)
        XCTAssertEqual(ensemble.shape, [2, 38, 45])
        let mean = (singles[0] + singles[1] + singles[2]) / 3
        XCTAssertLessThan(ensemble.maxAbsoluteDifference(to: mean), 1e-6)
        // It is a distribution per pixel, and differs from each member.
        let totals = ensemble.sum(alongAxes: [0]).scalars
        XCTAssertLessThan(totals.map { abs($0 - 1) }.max()!, 1e-5)
        for single in singles { XCTAssertGreaterThan(ensemble.maxAbsoluteDifference(to: single), 1e-3) }
    }

    func testOneModelIsTheModelItself() {
        let a = network(UNetConfiguration(baseFilters: 2, depth: 2), seed: 5)
        let picture = image(seed: 6)
        let single = Segmenter(model: a, tileSize: 24)
        let listed = Segmenter(models: [a], tileSize: 24)
        XCTAssertEqual(listed.probabilities(picture).scalars, single.probabilities(picture).scalars)
        XCTAssertTrue(single.model === a)
        XCTAssertEqual(single.models.count, 1)
    }

    func testEnsembleScoresItsAveragedPrediction() throws {
        let a = network(UNetConfiguration(baseFilters: 2, depth: 1), seed: 7)
        let b = network(UNetConfiguration(baseFilters: 2, depth: 1), seed: 8)
        let data = try SyntheticEM(width: 48, height: 48, seed: 9).dataset(trainCount: 3, validationSlices: 1...2)
        let ensemble = Segmenter(models: [a, b], tileSize: 48)
        var seen = 0
        let scored = ensemble.evaluate(data.validation, isbiScores: false) { slice, probabilities in
            XCTAssertEqual(probabilities.scalars, ensemble.probabilities(slice).scalars)
            seen += 1
        }
        XCTAssertEqual(seen, 2)
        XCTAssertTrue(scored.meanJaccard.isFinite)
    }

    func testMismatchedInputOrClassesAreNamed() throws {
        let plain = UNetConfiguration(baseFilters: 2, depth: 1)
        XCTAssertNil(Segmenter.ensembleMismatch(UNetConfiguration(baseFilters: 8, depth: 3), joining: plain))
        let context = try XCTUnwrap(Segmenter.ensembleMismatch(plain.withContextSlices(1), joining: plain))
        XCTAssertTrue(context.contains("3 input channel(s) (context slices 1) against 1 (context slices 0)"), context)
        let classes = try XCTUnwrap(Segmenter.ensembleMismatch(UNetConfiguration(classes: 3, baseFilters: 2, depth: 1), joining: plain))
        XCTAssertTrue(classes.contains("3 classes against 2"), classes)
    }
}
