import Foundation
import NN
@testable import UNet
import XCTest

/// The training recipe of issue 15: learning-rate warmup and schedules, the moving average of the
/// weights, cross-validation folds, and checkpoints of older versions.
final class TrainingRecipeTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("unet-recipe-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    static let data = try! SyntheticEM(width: 64, height: 64, seed: 3).dataset(trainCount: 6)

    func configuration(epochs: Int) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.epochs = epochs; c.tileSize = 32; c.batchSize = 2; c.learningRate = 3e-3
        c.seed = 1; c.previewEvery = 0; c.validationTileSize = 64
        return c
    }

    func makeTrainer(_ c: TrainingConfiguration, run: String) throws -> Trainer {
        var rng = SeededGenerator(seed: c.seed)
        let model = UNetModel(configuration: UNetConfiguration(baseFilters: 4, depth: 2), generator: &rng)
        return try Trainer(model: model, trainSlices: Self.data.train, validationSlices: Self.data.validation,
                           configuration: c, runFolder: folder.appendingPathComponent(run))
    }

    func record(_ epoch: Int, jaccard: Double) -> EpochRecord {
        EpochRecord(epoch: epoch, trainCost: 0.3, validationCost: 0.3, validationAccuracy: 0.9,
                    validationJaccard: [jaccard, jaccard], seconds: 1, learningRate: 0)
    }

    // MARK: rates

    func testWarmupGrowsPerBatchThenTheScheduleRunsOverTheRemainingEpochs() {
        var c = TrainingConfiguration()
        c.learningRate = 1e-3; c.epochs = 10; c.warmupEpochs = 2; c.schedule = .cosine; c.minimumLearningRate = 1e-4
        let plan = LearningRatePlan(configuration: c, batchesPerEpoch: 4)
        // Warmup: 8 batches from lr/8 to lr.
        let warmup = (1...2).flatMap { e in (1...4).map { plan.rate(epoch: e, batch: $0, history: []) } }
        for (i, rate) in warmup.enumerated() { XCTAssertEqual(rate, 1e-3 * Float(i + 1) / 8, accuracy: 1e-9, "batch \(i)") }
        // Cosine over the 8 epochs after the warmup, the same for every batch of an epoch.
        for epoch in 3...10 {
            let e = Double(epoch - 3)
            let expected = 1e-4 + (1e-3 - 1e-4) * (1 + cos(Double.pi * e / 8)) / 2
            XCTAssertEqual(Double(plan.rate(epoch: epoch, batch: 1, history: [])), expected, accuracy: 1e-9, "epoch \(epoch)")
            XCTAssertEqual(plan.rate(epoch: epoch, batch: 4, history: []), plan.rate(epoch: epoch, batch: 1, history: []))
        }
        c.schedule = .constant
        XCTAssertEqual(LearningRatePlan(configuration: c, batchesPerEpoch: 4).rate(epoch: 9, batch: 2, history: []), 1e-3)
    }

    func testStepAndPlateauSchedules() {
        var c = TrainingConfiguration()
        c.learningRate = 1e-3; c.epochs = 10; c.schedule = .step; c.stepEpochs = 3; c.gamma = 0.5; c.warmupEpochs = 1
        let step = LearningRatePlan(configuration: c, batchesPerEpoch: 5)
        // Epoch 1 is the warmup; the step schedule counts from epoch 2.
        XCTAssertEqual((2...10).map { step.rate(epoch: $0, batch: 1, history: []) },
                       [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25].map { Float($0) * 1e-3 })

        c.schedule = .plateau; c.warmupEpochs = 0; c.plateauPatience = 1
        let jaccards = [0.5, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7]
        let history = jaccards.enumerated().map { record($0.offset + 1, jaccard: $0.element) }
        let plateau = LearningRatePlan(configuration: c, batchesPerEpoch: 5)
        // Reduced after more than one epoch without a better mean Jaccard: after epochs 4 and 7.
        XCTAssertEqual((1...9).map { plateau.rate(epoch: $0, batch: 3, history: Array(history.prefix($0 - 1))) },
                       [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25].map { Float($0) * 1e-3 })
        // Only the epochs before the one asked about count.
        XCTAssertEqual(plateau.rate(epoch: 4, batch: 1, history: history), 1e-3)
        c.minimumLearningRate = 3e-4
        XCTAssertEqual(LearningRatePlan(configuration: c, batchesPerEpoch: 5).rate(epoch: 9, batch: 1, history: history), 3e-4)
    }

    func testTrainerFollowsThePlanAndPrintsTheRate() throws {
        var c = configuration(epochs: 3)
        c.warmupEpochs = 1; c.schedule = .cosine; c.minimumLearningRate = 1e-3
        let trainer = try makeTrainer(c, run: "cosine")
        var rates: [Float] = []
        trainer.onEvent = { if case .batch = $0 { rates.append(trainer.optimizer.learningRate) } }
        try trainer.run()
        let batches = rates.count / 3
        XCTAssertEqual(Array(rates.prefix(batches)), (1...batches).map { 3e-3 * Float($0) / Float(batches) })
        XCTAssertEqual(Set(rates[batches..<(2 * batches)]), [3e-3])
        for rate in rates[(2 * batches)...] { XCTAssertEqual(rate, 2e-3, accuracy: 1e-9) }   // (3e-3 + 1e-3) / 2: half the period
        for (rate, expected) in zip(trainer.history.map(\.learningRate), [3e-3, 3e-3, 2e-3]) { XCTAssertEqual(rate, expected, accuracy: 1e-9) }
        XCTAssertTrue(trainer.history[2].tutorialLine.hasSuffix(" s, lr 0.002"), trainer.history[2].tutorialLine)
    }

    // MARK: moving average

    func testValidationAndCheckpointsUseTheMovingAverage() throws {
        var c = configuration(epochs: 2)
        c.emaDecay = 0.9
        let trainer = try makeTrainer(c, run: "ema")
        try trainer.run()
        let ema = try XCTUnwrap(trainer.ema)
        let batches = BatchSampler(slices: Self.data.train, batchSize: 2, inputSize: 32, outputSize: 32, augment: true,
                                   loss: .crossEntropy, seed: 1).batchesPerEpoch
        XCTAssertEqual(ema.updates, 2 * batches, "one update per optimizer step")
        // The model the checkpoint deploys is the average, and it scores what the epoch line says.
        let summary = try CheckpointSummary.load(from: trainer.lastCheckpoint)
        let deployed = try summary.makeModel()
        for ((name, a), (_, b)) in zip(deployed.stateDictionary(), ema.averagedState()) {
            XCTAssertEqual(a.scalars, b.scalars, name)
        }
        XCTAssertNotEqual(deployed.stateDictionary()[0].1.scalars, trainer.model.stateDictionary()[0].1.scalars,
                          "the average differs from the raw weights")
        deployed.eval()
        let scored = Segmenter(model: deployed, tileSize: 64).evaluate(Self.data.validation, isbiScores: false)
        XCTAssertEqual(scored.meanJaccard, trainer.history.last!.meanValidationJaccard, accuracy: 1e-9)
        XCTAssertEqual(summary.training?.emaDecay, 0.9)
    }

    /// Resuming after epoch 2 of 4 gives the weights, the average and the rates of a run that never
    /// stopped (the trainer is deterministic for a fixed seed and thread count).
    func testResumeContinuesScheduleWarmupAndAverageExactly() throws {
        var c = configuration(epochs: 4)
        c.emaDecay = 0.95; c.warmupEpochs = 1; c.schedule = .plateau; c.plateauPatience = 0; c.gamma = 0.5
        let straight = try makeTrainer(c, run: "straight")
        try straight.run()

        var half = c
        half.epochs = 2
        let first = try makeTrainer(half, run: "halves")
        try first.run()
        let rest = try Trainer.resuming(from: first.lastCheckpoint, trainSlices: Self.data.train,
                                        validationSlices: Self.data.validation,
                                        runFolder: folder.appendingPathComponent("halves"), epochs: 4)
        XCTAssertEqual(rest.configuration, c)
        try rest.run()
        XCTAssertEqual(rest.history.map(\.learningRate), straight.history.map(\.learningRate))
        XCTAssertEqual(rest.history.map(\.trainCost), straight.history.map(\.trainCost))
        XCTAssertEqual(rest.ema?.updates, straight.ema?.updates)
        let a = try SafeTensors.read(from: straight.lastCheckpoint.path)
        let b = try SafeTensors.read(from: rest.lastCheckpoint.path)
        XCTAssertEqual(a.tensors.map(\.name), b.tensors.map(\.name))
        for (x, y) in zip(a.tensors, b.tensors) {
            XCTAssertEqual(x.tensor.scalars, y.tensor.scalars, x.name)
        }
    }

    // MARK: older checkpoints

    /// The `TrainingConfiguration` JSON written before the recipe's fields existed.
    static let oldTrainingJSON = """
        {"augment":true,"batchSize":2,"epochs":2,"learningRate":0.003,"loss":"cross-entropy","momentum":0.9,\
        "optimizer":"adam","patience":0,"previewEvery":0,"seed":1,"tileSize":32,"timeBudgetSeconds":0,\
        "validationTileSize":64,"weightDecay":0}
        """

    func testConfigurationWithoutTheNewFieldsDecodesWithDefaults() throws {
        let old = try JSONDecoder().decode(TrainingConfiguration.self, from: Data(Self.oldTrainingJSON.utf8))
        XCTAssertEqual(old, configuration(epochs: 2))
        XCTAssertEqual(old.schedule, .constant)
        XCTAssertEqual(old.emaDecay, 0)
        XCTAssertEqual(old.folds, 0)
        XCTAssertEqual(old.maxShearRadians, 0.41)
        XCTAssertEqual(old.brightness, 0)
        XCTAssertTrue(old.flips)
        XCTAssertEqual(old.plainEpochs, 0)
        // Round trip of a configuration that sets them.
        var c = configuration(epochs: 5)
        c.schedule = .step; c.warmupEpochs = 2; c.emaDecay = 0.99; c.folds = 5; c.fold = 3; c.gamma = 0.2
        c.flips = false; c.maxRotationDegrees = 90; c.maxShearRadians = 0; c.elasticSigma = 4; c.brightness = 0.1; c.contrast = 0.2
        c.plainEpochs = 2
        XCTAssertEqual(try JSONDecoder().decode(TrainingConfiguration.self, from: JSONEncoder().encode(c)), c)
        // A field that was always there is still required.
        let broken = Self.oldTrainingJSON.replacingOccurrences(of: "\"epochs\":2,", with: "")
        XCTAssertThrowsError(try JSONDecoder().decode(TrainingConfiguration.self, from: Data(broken.utf8)))
    }

    func testCheckpointOfAnOlderVersionResumes() throws {
        let first = try makeTrainer(configuration(epochs: 1), run: "old")
        try first.run()
        // Rewrite the checkpoint's training configuration as the previous version wrote it.
        let file = try SafeTensors.read(from: first.lastCheckpoint.path)
        var metadata = file.metadata
        metadata[MetadataKey.training] = Self.oldTrainingJSON
        try SafeTensors(tensors: file.tensors, metadata: metadata).write(to: first.lastCheckpoint.path)
        let resumed = try Trainer.resuming(from: first.lastCheckpoint, trainSlices: Self.data.train,
                                           validationSlices: Self.data.validation,
                                           runFolder: folder.appendingPathComponent("old"), epochs: 2)
        XCTAssertEqual(resumed.configuration.schedule, .constant)
        XCTAssertNil(resumed.ema)
        XCTAssertEqual(try resumed.run(), .completed)
        XCTAssertEqual(resumed.history.map(\.epoch), [1, 2])
    }

    // MARK: folds

    func testFoldsAreContiguousBlocksDifferingByAtMostOne() throws {
        XCTAssertEqual(try (0..<5).map { try ISBIDataset.foldValidationSlices(pageCount: 30, folds: 5, fold: $0) },
                       [0...5, 6...11, 12...17, 18...23, 24...29])
        for (pages, folds) in [(7, 3), (30, 4), (10, 10), (11, 2)] {
            let blocks = try (0..<folds).map { try ISBIDataset.foldValidationSlices(pageCount: pages, folds: folds, fold: $0) }
            XCTAssertEqual(blocks.flatMap { Array($0) }, Array(0..<pages), "\(pages) pages, \(folds) folds")
            let sizes = blocks.map(\.count)
            XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1, "\(sizes)")
        }
        for (folds, fold, expected) in [(1, 0, "at least 2"), (5, 5, "0...4"), (5, -1, "0...4"), (31, 0, "at most 30")] {
            XCTAssertThrowsError(try ISBIDataset.foldValidationSlices(pageCount: 30, folds: folds, fold: fold)) {
                XCTAssertTrue("\($0)".contains(expected), "\($0)")
            }
        }
    }

    func testInvalidRecipeSettingsNameTheField() {
        func check(_ field: String, _ change: (inout TrainingConfiguration) -> Void) {
            var c = configuration(epochs: 4)
            change(&c)
            XCTAssertThrowsError(try c.validate()) {
                XCTAssertEqual(($0 as? TrainingConfigurationError)?.field, field, "\($0)")
            }
        }
        check("warmupEpochs") { $0.warmupEpochs = 4 }
        check("warmupEpochs") { $0.warmupEpochs = -1 }
        check("minimumLearningRate") { $0.minimumLearningRate = 1 }
        check("stepEpochs") { $0.stepEpochs = 0 }
        check("gamma") { $0.gamma = 1 }
        check("gamma") { $0.gamma = 0 }
        check("plateauPatience") { $0.plateauPatience = -2 }
        check("emaDecay") { $0.emaDecay = 1 }
        check("emaDecay") { $0.emaDecay = .nan }
        check("folds") { $0.folds = 1 }
        check("fold") { $0.folds = 5; $0.fold = 5 }
        check("fold") { $0.fold = 2 }
        check("maxRotationDegrees") { $0.maxRotationDegrees = 181 }
        check("maxShearRadians") { $0.maxShearRadians = -0.1 }
        check("elasticSigma") { $0.elasticSigma = .nan }
        check("brightness") { $0.brightness = 1.5 }
        check("contrast") { $0.contrast = 1 }
        check("plainEpochs") { $0.plainEpochs = -1 }
        check("plainEpochs") { $0.plainEpochs = 5 }
    }

    func testRecommendedRecipeIsValidAndDiffersFromTheTutorialWhereDocumented() throws {
        let r = TrainingConfiguration.recommended
        XCTAssertNoThrow(try r.validate())
        XCTAssertEqual(r.epochs, 50)
        XCTAssertEqual(r.batchSize, 2)
        XCTAssertEqual(r.loss, .crossEntropyDice)
        XCTAssertEqual(r.schedule, .cosine)
        XCTAssertFalse(r.flips)
        XCTAssertEqual(r.elasticSigma, 5)
        XCTAssertEqual(r.plainEpochs, 10)
        XCTAssertEqual(TrainingConfiguration.recommended(epochs: 50), r)
        XCTAssertEqual([12, 5, 4, 1].map { TrainingConfiguration.recommended(epochs: $0).plainEpochs }, [2, 1, 0, 0],
                       "the last fifth of the epochs, rounded down")
        XCTAssertNoThrow(try TrainingConfiguration.recommended(epochs: 7).validate())
        XCTAssertEqual(r.augmentation(tileSize: 256).contrast, 0.2)
        XCTAssertFalse(r.augmentation(tileSize: 256).verticalFlip)
        XCTAssertEqual(try JSONDecoder().decode(TrainingConfiguration.self, from: JSONEncoder().encode(r)), r)
    }

    func testAugmentationFollowsTheConfiguredMagnitudes() {
        var c = configuration(epochs: 4)
        XCTAssertEqual(c.augmentation(tileSize: 64), .tutorial(tileSize: 64), "the defaults are the tutorial's")
        c.maxRotationDegrees = 10; c.maxShearRadians = 0; c.elasticSigma = 0; c.brightness = 0.1; c.contrast = 0.2
        let a = c.augmentation(tileSize: 64)
        XCTAssertEqual(a.maxRotationDegrees, 10)
        XCTAssertTrue(a.rotation)
        XCTAssertFalse(a.shear, "a magnitude of 0 switches the part off")
        XCTAssertFalse(a.elastic)
        XCTAssertEqual(a.brightness, 0.1)
        XCTAssertEqual(a.contrast, 0.2)
        XCTAssertTrue(a.horizontalFlip && a.verticalFlip)
        c.flips = false
        let unflipped = c.augmentation(tileSize: 64)
        XCTAssertFalse(unflipped.horizontalFlip || unflipped.verticalFlip)
        XCTAssertTrue(unflipped.rotation, "only the flips are off")
        c.augment = false
        XCTAssertEqual(c.augmentation(tileSize: 64), .none(tileWidth: 64, tileHeight: 64))
    }

    // MARK: plain epochs

    func testAugmentationSummaryNamesWhatIsOn() {
        var c = configuration(epochs: 5)
        XCTAssertEqual(c.augmentationSummary, "flips, rotation 25.0 deg, shear 0.41 rad, elastic sigma 10.0 px")
        c.flips = false; c.elasticSigma = 5; c.brightness = 0.1; c.contrast = 0.2; c.plainEpochs = 2
        XCTAssertEqual(c.augmentationSummary,
                       "no flips, rotation 25.0 deg, shear 0.41 rad, elastic sigma 5.0 px, brightness 0.1, contrast 0.2, none in the last 2 epoch(s)")
        c.augment = false
        XCTAssertEqual(c.augmentationSummary, "off")
    }

    func testPlainEpochsAreTheLastOnes() {
        var c = configuration(epochs: 5)
        XCTAssertEqual((1...5).filter(c.isPlainEpoch), [])
        c.plainEpochs = 2
        XCTAssertEqual((1...5).filter(c.isPlainEpoch), [4, 5])
        c.plainEpochs = 5
        XCTAssertEqual((1...5).filter(c.isPlainEpoch), [1, 2, 3, 4, 5])
    }

    /// The plain epochs train exactly as a run without augmentation would, and the epochs before
    /// them exactly as a run augmenting throughout.
    func testPlainEpochsTrainOnUnaugmentedCrops() throws {
        func weights(_ t: Trainer) -> [[Float]] { t.model.stateDictionary().map(\.1.scalars) }
        var plainOnly = configuration(epochs: 2)
        plainOnly.plainEpochs = 2
        var unaugmented = configuration(epochs: 2)
        unaugmented.augment = false
        let a = try makeTrainer(plainOnly, run: "plain-all"), b = try makeTrainer(unaugmented, run: "no-augment")
        try a.run(); try b.run()
        XCTAssertEqual(weights(a), weights(b), "two plain epochs are two epochs without augmentation")

        var lastPlain = configuration(epochs: 2)
        lastPlain.plainEpochs = 1
        let augmented = configuration(epochs: 2)
        let c = try makeTrainer(lastPlain, run: "plain-last"), d = try makeTrainer(augmented, run: "augmented")
        var messages: [String] = []
        c.onEvent = { if case .message(let text) = $0 { messages.append(text) } }
        try c.run(); try d.run()
        XCTAssertEqual(messages, ["epochs 2-2 train on plain crops, without augmentation"])
        XCTAssertEqual(c.history[0].trainCost, d.history[0].trainCost, "epoch 1 augments in both runs")
        XCTAssertNotEqual(c.history[1].trainCost, d.history[1].trainCost, "epoch 2 is plain in one run only")
        XCTAssertNotEqual(weights(c), weights(d))
        XCTAssertNotEqual(weights(c), weights(a), "epoch 1 was augmented")
    }
}
