import Foundation
import NN
import Tensor
@testable import UNet
import XCTest

/// A run stopped after an epoch and resumed from `last.safetensors` must end with exactly the weights,
/// batch-norm statistics and optimizer state of the same run done in one go (issue 17: `kill -9` and
/// `--resume` reach the same final weights). Compared bit for bit, tensor by tensor.
final class ResumeDeterminismTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("unet-resume-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    static let data = try! SyntheticEM(width: 48, height: 48, seed: 5).dataset(trainCount: 5)

    func makeTrainer(_ model: UNetConfiguration, optimizer: TrainingConfiguration.OptimizerKind, epochs: Int,
                     run: String) throws -> Trainer {
        var rng = SeededGenerator(seed: 7)
        let unet = UNetModel(configuration: model, generator: &rng)
        var c = TrainingConfiguration()
        c.epochs = epochs; c.tileSize = 32; c.batchSize = 2; c.learningRate = 3e-3; c.seed = 7
        c.optimizer = optimizer; c.previewEvery = 0; c.validationTileSize = 48
        return try Trainer(model: unet, trainSlices: Self.data.train, validationSlices: Self.data.validation,
                           configuration: c, runFolder: folder.appendingPathComponent(run))
    }

    /// Trains 3 epochs straight, and 1 epoch then a resume to 3; returns the tensors that differ.
    func differingTensors(_ model: UNetConfiguration, optimizer: TrainingConfiguration.OptimizerKind) throws -> [String] {
        let straight = try makeTrainer(model, optimizer: optimizer, epochs: 3, run: "straight")
        try straight.run()
        let first = try makeTrainer(model, optimizer: optimizer, epochs: 1, run: "resumed")
        try first.run()
        let rest = try Trainer.resuming(from: first.lastCheckpoint, trainSlices: Self.data.train,
                                        validationSlices: Self.data.validation,
                                        runFolder: folder.appendingPathComponent("resumed"), epochs: 3)
        try rest.run()
        XCTAssertEqual(rest.history.map(\.trainCost), straight.history.map(\.trainCost))
        let a = try SafeTensors.read(from: straight.lastCheckpoint.path)
        let b = try SafeTensors.read(from: rest.lastCheckpoint.path)
        XCTAssertEqual(a.names, b.names)
        XCTAssertGreaterThan(a.names.filter { $0.hasPrefix("optimizer.") }.count, 0, "no optimizer state saved")
        try? FileManager.default.removeItem(at: folder)
        return a.names.filter { name in
            guard let x = a[name], let y = b[name], x.shape == y.shape else { return true }
            return x.scalars.map(\.bitPattern) != y.scalars.map(\.bitPattern)
        }
    }

    func testResumeEndsWithTheWeightsOfAnUninterruptedRun() throws {
        XCTAssertEqual(try differingTensors(UNetConfiguration(baseFilters: 2, depth: 1), optimizer: .adam), [])
        XCTAssertEqual(try differingTensors(UNetConfiguration(baseFilters: 2, depth: 1, batchNorm: false), optimizer: .sgd), [])
    }

    /// The dropout masks used to come from one generator that a resumed process restarted from its
    /// seed, so a resumed run with dropout drew other masks than the uninterrupted one.
    func testResumeWithDropoutEndsWithTheSameWeights() throws {
        XCTAssertEqual(try differingTensors(UNetConfiguration(baseFilters: 2, depth: 1, dropout: 0.4), optimizer: .adam), [])
    }

    /// The masks depend on the step: two steps of one epoch do not drop the same units.
    func testDropoutMasksDifferBetweenSteps() throws {
        var rng = SeededGenerator(seed: 1)
        let model = UNetModel(configuration: UNetConfiguration(baseFilters: 2, depth: 1, dropout: 0.5), generator: &rng)
        model.train()
        let input = Tensor(shape: [1, 1, 16, 16], scalars: (0..<256).map { Float($0 % 17) / 17 })
        func logits(epoch: Int, batch: Int) -> [Float] {
            model.reseedDropout(seed: 3, epoch: epoch, batch: batch)
            return withoutGradients { model(input) }.scalars
        }
        XCTAssertEqual(logits(epoch: 1, batch: 1), logits(epoch: 1, batch: 1))
        XCTAssertNotEqual(logits(epoch: 1, batch: 1), logits(epoch: 1, batch: 2))
        XCTAssertNotEqual(logits(epoch: 1, batch: 1), logits(epoch: 2, batch: 1))
    }
}
