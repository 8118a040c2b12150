@testable import UNet
import XCTest

final class UNetModelTests: XCTestCase {
    func testTutorialModelHasThePyTorchReferenceParameterCount() {
        var rng = SeededGenerator(seed: 0)
        let model = UNetModel(configuration: .tutorial, generator: &rng)
        // ../shared/reference/torch_unet_bench.py --mode count --base 64
        XCTAssertEqual(model.parameterCount, 36_958_146)
        var rng16 = SeededGenerator(seed: 0)
        XCTAssertEqual(UNetModel(configuration: UNetConfiguration(baseFilters: 16), generator: &rng16).parameterCount, 2_312_946)
    }

    func testNamesAreStableAndReadable() {
        var rng = SeededGenerator(seed: 0)
        let model = UNetModel(configuration: UNetConfiguration(baseFilters: 2, depth: 2), generator: &rng)
        let names = model.namedParameters().map(\.0)
        XCTAssertEqual(names.first, "encoder.0.conv1.weight")
        XCTAssertTrue(names.contains("encoder.0.bn1.weight"))
        XCTAssertTrue(names.contains("bottleneck.conv2.weight"))
        XCTAssertTrue(names.contains("decoder.0.up.weight"))
        XCTAssertTrue(names.contains("decoder.0.up_bn.bias"))
        XCTAssertTrue(names.contains("decoder.1.convs.conv2.weight"))
        XCTAssertEqual(Array(names.suffix(2)), ["head.weight", "head.bias"])
        XCTAssertTrue(model.namedBuffers().map(\.0).contains("encoder.1.bn2.running_var"))
        XCTAssertFalse(names.contains { $0.hasSuffix("conv1.bias") || $0.hasSuffix("conv2.bias") || $0.hasSuffix("up.bias") },
                       "convolutions followed by batch norm have no bias")
    }

    func testShapesForSameAndValidPadding() {
        var rng = SeededGenerator(seed: 1)
        let same = UNetModel(configuration: UNetConfiguration(baseFilters: 2, depth: 3), generator: &rng)
        let y = withoutGradients { same(Tensor.zeros([2, 1, 40, 24])) }
        XCTAssertEqual(y.shape, [2, 2, 40, 24])
        let paper = UNetConfiguration(baseFilters: 64, padding: .valid, upsampling: .halveChannels)
        XCTAssertEqual(paper.outputSize(forInputSize: 572), 388)
        XCTAssertNil(paper.outputSize(forInputSize: 570))
        let valid = UNetModel(configuration: UNetConfiguration(baseFilters: 2, depth: 2, padding: .valid, upsampling: .halveChannels),
                              generator: &rng)
        let inSize = valid.configuration.validInputSize(atLeast: 40)
        let out = withoutGradients { valid(Tensor.zeros([1, 1, inSize, inSize])) }
        XCTAssertEqual(out.shape[2], valid.configuration.outputSize(forInputSize: inSize))
    }

    func testInvalidConfigurationIsReported() {
        XCTAssertThrowsError(try UNetConfiguration(baseFilters: 0).validate()) { error in
            XCTAssertTrue("\(error)".contains("baseFilters = 0"))
        }
        XCTAssertThrowsError(try UNetConfiguration(dropout: 1).validate())
        XCTAssertNoThrow(try UNetConfiguration.tutorial.validate())
    }

    func testTiledPredictionOfTheModelHasNoSeams() {
        var rng = SeededGenerator(seed: 5)
        let model = UNetModel(configuration: UNetConfiguration(baseFilters: 2, depth: 2), generator: &rng)
        // Make batch-norm statistics non-trivial, then predict in eval mode.
        _ = withoutGradients { model(Tensor.randomUniform([2, 1, 32, 32], generator: &rng)) }
        let image = ImagePlane(width: 70, height: 50, pixels: (0..<3500).map { _ in rng.nextUnitFloat() })
        let whole = Segmenter(model: model, tileSize: 128).probabilities(image)
        let tiled = Segmenter(model: model, tileSize: 24).probabilities(image)
        XCTAssertEqual(whole.shape, [2, 50, 70])
        XCTAssertLessThan(tiled.maxAbsoluteDifference(to: whole), 1e-4)
    }
}
