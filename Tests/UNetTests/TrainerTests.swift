import Foundation
@testable import UNet
import XCTest

final class TrainerTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("unet-trainer-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    static let data = try! SyntheticEM(width: 64, height: 64, seed: 3).dataset(trainCount: 6)

    func makeTrainer(epochs: Int = 2, seed: UInt64 = 1, loss: LossKind = .crossEntropy, learningRate: Float = 3e-3,
                     patience: Int = 0, run: String = "run") throws -> Trainer {
        var rng = SeededGenerator(seed: seed)
        let model = UNetModel(configuration: UNetConfiguration(baseFilters: 4, depth: 2), generator: &rng)
        var c = TrainingConfiguration()
        c.epochs = epochs; c.tileSize = 32; c.batchSize = 2; c.learningRate = learningRate; c.loss = loss
        c.seed = seed; c.patience = patience; c.previewEvery = 1; c.validationTileSize = 64
        return try Trainer(model: model, trainSlices: Self.data.train, validationSlices: Self.data.validation,
                           configuration: c, runFolder: folder.appendingPathComponent(run))
    }

    func testRunWritesTheRunFolderAndLearns() throws {
        let trainer = try makeTrainer(epochs: 4)
        var batchEvents = 0
        trainer.onEvent = { if case .batch = $0 { batchEvents += 1 } }
        XCTAssertEqual(try trainer.run(), .completed)
        XCTAssertEqual(trainer.history.map(\.epoch), [1, 2, 3, 4])
        XCTAssertEqual(batchEvents, 4 * BatchSampler(slices: Self.data.train, batchSize: 2, inputSize: 32, outputSize: 32,
                                                     augment: true, loss: .crossEntropy, seed: 1).batchesPerEpoch)
        XCTAssertLessThan(trainer.history.last!.trainCost, trainer.history.first!.trainCost)
        let run = folder.appendingPathComponent("run")
        for file in ["config.json", "metrics.csv", "training-curve.svg", "best.safetensors", "last.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent(file).path), file)
        }
        let csv = try String(contentsOf: run.appendingPathComponent("metrics.csv"), encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").count, 5)
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("previews").path).isEmpty)
    }

    func testInterruptAndResumeContinueTheEpochCount() throws {
        let first = try makeTrainer(epochs: 3)
        var batches = 0
        first.onEvent = { if case .batch = $0 { batches += 1 } }
        // Stop in the middle of epoch 2.
        let perEpoch = BatchSampler(slices: Self.data.train, batchSize: 2, inputSize: 32, outputSize: 32, augment: true,
                                    loss: .crossEntropy, seed: 1).batchesPerEpoch
        first.shouldStop = { batches >= perEpoch + 1 }
        guard case .interrupted(let checkpoint) = try first.run() else { return XCTFail("expected an interruption") }
        XCTAssertEqual(first.history.count, 1)
        let resumed = try Trainer.resuming(from: checkpoint, trainSlices: Self.data.train,
                                           validationSlices: Self.data.validation, runFolder: folder.appendingPathComponent("run"))
        XCTAssertEqual(resumed.history.count, 1)
        XCTAssertEqual(resumed.configuration.epochs, 3)
        XCTAssertEqual(try resumed.run(), .completed)
        XCTAssertEqual(resumed.history.map(\.epoch), [1, 2, 3])
        // Extending the run.
        let extended = try Trainer.resuming(from: resumed.lastCheckpoint, trainSlices: Self.data.train,
                                            validationSlices: Self.data.validation, runFolder: folder.appendingPathComponent("run"),
                                            epochs: 4)
        try extended.run()
        XCTAssertEqual(extended.history.map(\.epoch), [1, 2, 3, 4])
    }

    func testResumeReproducesAnUninterruptedRun() throws {
        let straight = try makeTrainer(epochs: 2, run: "straight")
        try straight.run()
        let halfway = try makeTrainer(epochs: 1, run: "halves")
        try halfway.run()
        let rest = try Trainer.resuming(from: halfway.lastCheckpoint, trainSlices: Self.data.train,
                                        validationSlices: Self.data.validation,
                                        runFolder: folder.appendingPathComponent("halves"), epochs: 2)
        try rest.run()
        // Same data order, same optimizer state: the same second epoch up to float reassociation.
        XCTAssertEqual(rest.history[1].trainCost, straight.history[1].trainCost, accuracy: 1e-4)
    }

    func testEarlyStoppingAndResumeErrors() throws {
        let trainer = try makeTrainer(epochs: 30, learningRate: 1e-7, patience: 2)
        guard case .earlyStopped(let best) = try trainer.run() else { return XCTFail("expected early stopping") }
        XCTAssertEqual(trainer.history.count, best + 2)
        let bogus = folder.appendingPathComponent("bogus.safetensors")
        try Data([1, 2, 3]).write(to: bogus)
        XCTAssertThrowsError(try Trainer.resuming(from: bogus, trainSlices: Self.data.train, validationSlices: [],
                                                  runFolder: folder)) { error in
            XCTAssertTrue("\(error)".contains("bogus.safetensors"), "\(error)")
        }
    }

    func testDivergenceIsReportedWithEpochAndBatch() throws {
        // A NaN in the data makes the loss NaN at the first batch.
        let poisoned = Self.data.train.map { slice -> EMSlice in
            var s = slice
            s.image = [Float](repeating: .nan, count: s.image.count)
            return s
        }
        var rng = SeededGenerator(seed: 1)
        let model = UNetModel(configuration: UNetConfiguration(baseFilters: 4, depth: 2), generator: &rng)
        var c = TrainingConfiguration()
        c.epochs = 1; c.tileSize = 32; c.batchSize = 2
        let trainer = try Trainer(model: model, trainSlices: poisoned, validationSlices: Self.data.validation,
                                  configuration: c, runFolder: folder)
        XCTAssertThrowsError(try trainer.run()) { error in
            guard case TrainingError.nonFiniteLoss(let epoch, let batch, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(epoch, 1)
            XCTAssertEqual(batch, 1)
            XCTAssertTrue("\(error)".contains("epoch 1, batch 1"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: trainer.lastCheckpoint.path), "a diverged run must not save")
    }

    func testEveryLossTrains() throws {
        for loss in LossKind.allCases {
            let trainer = try makeTrainer(epochs: 1, loss: loss, run: loss.rawValue)
            XCTAssertEqual(try trainer.run(), .completed, "\(loss)")
            XCTAssertTrue(trainer.history[0].trainCost.isFinite, "\(loss)")
        }
    }

    /// A fixed-seed run's loss curve, recorded once: changes to the kernels must not change what is
    /// computed beyond float reassociation.
    func testFixedSeedLossCurveIsUnchanged() throws {
        let trainer = try makeTrainer(epochs: 3, seed: 11)
        try trainer.run()
        let costs = trainer.history.map(\.trainCost)
        let recorded = FixedSeedCurve.trainCosts
        guard !recorded.isEmpty else {
            print("FixedSeedCurve.trainCosts = \(costs)")
            return XCTFail("record the curve: \(costs)")
        }
        for (a, b) in zip(costs, recorded) { XCTAssertEqual(a, b, accuracy: 2e-3 * max(1, abs(b))) }
    }
}

enum FixedSeedCurve {
    static let trainCosts: [Double] = [0.6577057749032974, 0.41687321066856386, 0.3071583569049835]
}

final class LossTests: XCTestCase {
    func testSoftDiceMatchesReferenceAndGradients() {
        var rng = SeededGenerator(seed: 2)
        let logits = Tensor.randomNormal([2, 2, 3, 3], generator: &rng)
        let targets = Tensor(shape: [2, 3, 3], scalars: (0..<18).map { Float($0 % 3 == 0 ? 1 : 0) })
        let p = logits.softmax(alongAxis: 1)
        var dice = 0.0
        for c in 0..<2 {
            var inter = 0.0, total = 0.0
            for n in 0..<2 { for i in 0..<3 { for j in 0..<3 {
                let y = targets[n, i, j] == Float(c) ? 1.0 : 0.0
                inter += Double(p[n, c, i, j]) * y; total += Double(p[n, c, i, j]) + y
            } } }
            dice += (2 * inter + 1) / (total + 1)
        }
        XCTAssertEqual(Double(softDiceLoss(logits: logits, targets: targets).scalar), 1 - dice / 2, accuracy: 1e-5)
        // Gradient against central finite differences in Double on every logit.
        let leaf = logits.requiringGradient()
        softDiceLoss(logits: leaf, targets: targets).backward()
        let analytic = leaf.gradient!.scalars
        for e in 0..<logits.count {
            var plus = logits, minus = logits
            plus.withUnsafeMutableBufferPointer { $0[e] += 1e-2 }
            minus.withUnsafeMutableBufferPointer { $0[e] -= 1e-2 }
            let numeric = (Double(softDiceLoss(logits: plus, targets: targets).scalar)
                - Double(softDiceLoss(logits: minus, targets: targets).scalar)) / 2e-2
            XCTAssertEqual(Double(analytic[e]), numeric, accuracy: 2e-3 + 2e-2 * abs(numeric), "logit \(e)")
        }
        // The combined loss is the sum of the two, value and gradient.
        let both = logits.requiringGradient()
        let combined = segmentationLoss(.crossEntropyDice, logits: both, targets: targets, weights: nil)
        let crossEntropy = softmaxCrossEntropy(logits: logits, targets: targets).scalar
        XCTAssertEqual(combined.scalar, crossEntropy + softDiceLoss(logits: logits, targets: targets).scalar, accuracy: 1e-6)
        combined.backward()
        let crossEntropyLeaf = logits.requiringGradient()
        softmaxCrossEntropy(logits: crossEntropyLeaf, targets: targets).backward()
        for e in 0..<logits.count {
            XCTAssertEqual(both.gradient!.scalars[e], analytic[e] + crossEntropyLeaf.gradient!.scalars[e], accuracy: 1e-6, "logit \(e)")
        }
        XCTAssertEqual(LossKind(rawValue: "cross-entropy+dice"), .crossEntropyDice)
        let perfect = Tensor(shape: [1, 2, 1, 2], scalars: [-20, 20, 20, -20])
        XCTAssertEqual(softDiceLoss(logits: perfect, targets: Tensor(shape: [1, 1, 2], scalars: [1, 0]), smoothing: 0).scalar, 0, accuracy: 1e-6)
    }

    func testLovaszEqualsTheJaccardLossAtHardPredictions() {
        // Near one-hot logits: the loss is 1 - mean Jaccard of the argmax, as the confusion matrix gives it.
        var rng = SeededGenerator(seed: 4)
        for trial in 0..<5 {
            let n = 2, h = 4, w = 5
            let targets = Tensor(shape: [n, h, w], scalars: (0..<(n * h * w)).map { _ in Float(rng.nextInt(in: 0..<2)) })
            let predicted = (0..<(n * h * w)).map { _ in rng.nextInt(in: 0..<2) }
            var logits = [Float](repeating: 0, count: n * 2 * h * w)
            for b in 0..<n { for i in 0..<(h * w) {
                let k = predicted[b * h * w + i]
                logits[(b * 2 + k) * h * w + i] = 30
            } }
            var jaccard = 0.0
            for k in 0..<2 {
                var both = 0, either = 0
                for j in 0..<(n * h * w) {
                    let t = Int(targets.scalars[j]) == k, p = predicted[j] == k
                    if t && p { both += 1 }
                    if t || p { either += 1 }
                }
                jaccard += either == 0 ? 1 : Double(both) / Double(either)
            }
            let loss = lovaszSoftmaxLoss(logits: Tensor(shape: [n, 2, h, w], scalars: logits), targets: targets).scalar
            XCTAssertEqual(Double(loss), 1 - jaccard / 2, accuracy: 1e-5, "trial \(trial)")
        }
        let perfect = Tensor(shape: [1, 2, 1, 2], scalars: [-20, 20, 20, -20])
        XCTAssertEqual(lovaszSoftmaxLoss(logits: perfect, targets: Tensor(shape: [1, 1, 2], scalars: [1, 0])).scalar, 0, accuracy: 1e-6)
        XCTAssertEqual(LossKind(rawValue: "cross-entropy+lovasz"), .crossEntropyLovasz)
    }

    func testLovaszGradientMatchesFiniteDifferences() {
        var rng = SeededGenerator(seed: 5)
        let logits = Tensor.randomNormal([2, 2, 3, 4], generator: &rng)
        let targets = Tensor(shape: [2, 3, 4], scalars: (0..<24).map { Float(($0 * 7) % 5 < 2 ? 0 : 1) })
        let leaf = logits.requiringGradient()
        lovaszSoftmaxLoss(logits: leaf, targets: targets).backward()
        let analytic = leaf.gradient!.scalars
        // Piecewise linear: steps small enough not to reorder the (distinct) errors.
        let step: Float = 1e-3
        for e in 0..<logits.count {
            var plus = logits, minus = logits
            plus.withUnsafeMutableBufferPointer { $0[e] += step }
            minus.withUnsafeMutableBufferPointer { $0[e] -= step }
            let numeric = (Double(lovaszSoftmaxLoss(logits: plus, targets: targets).scalar)
                - Double(lovaszSoftmaxLoss(logits: minus, targets: targets).scalar)) / Double(2 * step)
            XCTAssertEqual(Double(analytic[e]), numeric, accuracy: 2e-3 + 2e-2 * abs(numeric), "logit \(e)")
        }
        // The combined loss is the sum of its parts, value and gradient.
        let both = logits.requiringGradient()
        let combined = segmentationLoss(.crossEntropyLovasz, logits: both, targets: targets, weights: nil)
        XCTAssertEqual(combined.scalar, softmaxCrossEntropy(logits: logits, targets: targets).scalar
                       + lovaszSoftmaxLoss(logits: logits, targets: targets).scalar, accuracy: 1e-6)
        combined.backward()
        let crossEntropyLeaf = logits.requiringGradient()
        softmaxCrossEntropy(logits: crossEntropyLeaf, targets: targets).backward()
        for e in 0..<logits.count {
            XCTAssertEqual(both.gradient!.scalars[e], analytic[e] + crossEntropyLeaf.gradient!.scalars[e], accuracy: 1e-6, "logit \(e)")
        }
    }
}
