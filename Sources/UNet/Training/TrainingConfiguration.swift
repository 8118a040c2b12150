/// How to train: optimizer, schedule, data sampling and stopping. Defaults follow the tutorial
/// where that suits a CPU (Adam, lr 1e-4, augmentation on), with 256^2 crops instead of whole slices.
public struct TrainingConfiguration: Codable, Sendable, Equatable {
    /// The optimizer.
    public enum OptimizerKind: String, Codable, Sendable, CaseIterable {
        /// Adam; `weightDecay` is the tutorial's L2 penalty in the loss.
        case adam
        /// AdamW; `weightDecay` is its decoupled weight decay.
        case adamw
        /// SGD with `momentum`; `weightDecay` is its L2 weight decay.
        case sgd
    }

    /// Number of epochs to run (an epoch covers the training pixels about once in crops).
    public var epochs: Int = 50
    /// Crops per batch.
    public var batchSize: Int = 4
    /// Input crop side in pixels (rounded up to what the network accepts).
    public var tileSize: Int = 256
    /// Loss.
    public var loss: LossKind = .crossEntropy
    /// Optimizer.
    public var optimizer: OptimizerKind = .adam
    /// Learning rate (the tutorial's main uses 1e-4 with Adam).
    public var learningRate: Float = 1e-4
    /// The tutorial's L2 penalty lambda on convolution weights (0 = off); for AdamW/SGD it is the
    /// optimizer's own weight decay instead.
    public var weightDecay: Float = 0
    /// SGD momentum.
    public var momentum: Float = 0.9
    /// Augmentation (rotation, shear, flips, elastic warp, and intensity jitter where set) on the
    /// training crops.
    public var augment: Bool = true
    /// Random horizontal and vertical flips in the augmentation (the tutorial's). Off, a model can
    /// learn a consistent sub-pixel offset of the annotation against the image, which flips cancel.
    public var flips: Bool = true
    /// Largest rotation of the augmentation, in degrees (the tutorial's 25).
    public var maxRotationDegrees: Double = 25
    /// Largest shear angle of the augmentation, in radians (the tutorial's 0.41; 0 = none).
    public var maxShearRadians: Double = 0.41
    /// Standard deviation in pixels of the elastic warp's control-point displacements (the
    /// tutorial's 10; 0 = none).
    public var elasticSigma: Double = 10
    /// Largest brightness shift of the [0, 1] image per crop (0 = none, the tutorial).
    public var brightness: Double = 0
    /// Largest relative contrast change per crop, below 1 (0 = none, the tutorial).
    public var contrast: Double = 0
    /// The last this many epochs train on plain random crops, without the augmentation (0 = none):
    /// while the learning rate is low the model then fits images as they are, not warped ones.
    /// Counted from `epochs`; a run stopped earlier by its time budget may never reach them.
    public var plainEpochs: Int = 0
    /// Stop after this many epochs without a better mean validation Jaccard (0 = never).
    public var patience: Int = 0
    /// Seed of initialization, sampling, augmentation and dropout.
    public var seed: UInt64 = 0
    /// Write PNG previews of validation predictions every this many epochs (0 = never).
    public var previewEvery: Int = 5
    /// Validation tile side for overlap-tile inference; nil chooses it from the validation slices'
    /// size (`Segmenter.automaticTileSize` with a 1 GiB budget, `Trainer.validationTileBudgetBytes`).
    public var validationTileSize: Int? = nil
    /// Stop after this many seconds of training (0 = no limit); the epoch in progress finishes.
    public var timeBudgetSeconds: Double = 0
    /// How the learning rate changes from epoch to epoch after the warmup.
    public var schedule: ScheduleKind = .constant
    /// Epochs of linear warmup (per batch) from `learningRate / (warmupEpochs * batches)` to
    /// `learningRate`, before the schedule starts (0 = none). Must be less than `epochs`.
    public var warmupEpochs: Int = 0
    /// The floor of the cosine schedule, and the lowest rate `.plateau` reduces to.
    public var minimumLearningRate: Float = 0
    /// Epochs between two decays of the `.step` schedule.
    public var stepEpochs: Int = 10
    /// Decay factor of the `.step` and `.plateau` schedules, in (0, 1).
    public var gamma: Float = 0.5
    /// Epochs without a better mean validation Jaccard that `.plateau` tolerates before it reduces
    /// the rate (PyTorch's `ReduceLROnPlateau(mode="max", patience=...)`).
    public var plateauPatience: Int = 5
    /// Decay of the exponential moving average of the weights used for validation and saved as the
    /// model in checkpoints (0 = no average). Typical: 0.99 to 0.999.
    public var emaDecay: Float = 0
    /// Cross-validation: the number of contiguous blocks the labelled slices are cut into (0 = no
    /// folds: the validation slices are given explicitly).
    public var folds: Int = 0
    /// Cross-validation: the block (0-based, below `folds`) held out for validation.
    public var fold: Int = 0

    /// The defaults.
    public init() {}

    /// Decodes a configuration; fields added after the first release (the schedule, warmup, EMA, fold
    /// augmentation-magnitude and plain-epoch settings) take their defaults when absent, so older checkpoints still load and resume.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        epochs = try c.decode(Int.self, forKey: .epochs)
        batchSize = try c.decode(Int.self, forKey: .batchSize)
        tileSize = try c.decode(Int.self, forKey: .tileSize)
        loss = try c.decode(LossKind.self, forKey: .loss)
        optimizer = try c.decode(OptimizerKind.self, forKey: .optimizer)
        learningRate = try c.decode(Float.self, forKey: .learningRate)
        weightDecay = try c.decode(Float.self, forKey: .weightDecay)
        momentum = try c.decode(Float.self, forKey: .momentum)
        augment = try c.decode(Bool.self, forKey: .augment)
        patience = try c.decode(Int.self, forKey: .patience)
        seed = try c.decode(UInt64.self, forKey: .seed)
        previewEvery = try c.decode(Int.self, forKey: .previewEvery)
        validationTileSize = try c.decodeIfPresent(Int.self, forKey: .validationTileSize)
        timeBudgetSeconds = try c.decode(Double.self, forKey: .timeBudgetSeconds)
        let defaults = TrainingConfiguration()
        schedule = try c.decodeIfPresent(ScheduleKind.self, forKey: .schedule) ?? defaults.schedule
        warmupEpochs = try c.decodeIfPresent(Int.self, forKey: .warmupEpochs) ?? defaults.warmupEpochs
        minimumLearningRate = try c.decodeIfPresent(Float.self, forKey: .minimumLearningRate) ?? defaults.minimumLearningRate
        stepEpochs = try c.decodeIfPresent(Int.self, forKey: .stepEpochs) ?? defaults.stepEpochs
        gamma = try c.decodeIfPresent(Float.self, forKey: .gamma) ?? defaults.gamma
        plateauPatience = try c.decodeIfPresent(Int.self, forKey: .plateauPatience) ?? defaults.plateauPatience
        emaDecay = try c.decodeIfPresent(Float.self, forKey: .emaDecay) ?? defaults.emaDecay
        folds = try c.decodeIfPresent(Int.self, forKey: .folds) ?? defaults.folds
        fold = try c.decodeIfPresent(Int.self, forKey: .fold) ?? defaults.fold
        flips = try c.decodeIfPresent(Bool.self, forKey: .flips) ?? defaults.flips
        maxRotationDegrees = try c.decodeIfPresent(Double.self, forKey: .maxRotationDegrees) ?? defaults.maxRotationDegrees
        maxShearRadians = try c.decodeIfPresent(Double.self, forKey: .maxShearRadians) ?? defaults.maxShearRadians
        elasticSigma = try c.decodeIfPresent(Double.self, forKey: .elasticSigma) ?? defaults.elasticSigma
        brightness = try c.decodeIfPresent(Double.self, forKey: .brightness) ?? defaults.brightness
        contrast = try c.decodeIfPresent(Double.self, forKey: .contrast) ?? defaults.contrast
        plainEpochs = try c.decodeIfPresent(Int.self, forKey: .plainEpochs) ?? defaults.plainEpochs
    }

    /// Whether epoch `epoch` (1-based) is one of the last `plainEpochs`, trained without augmentation.
    public func isPlainEpoch(_ epoch: Int) -> Bool { epoch > epochs - plainEpochs }

    /// The augmentation of the training crops of side `tileSize`: these magnitudes when `augment`,
    /// else a plain random crop.
    public func augmentation(tileSize: Int) -> AugmentationConfiguration {
        guard augment else { return .none(tileWidth: tileSize, tileHeight: tileSize) }
        var a = AugmentationConfiguration.tutorial(tileSize: tileSize)
        a.horizontalFlip = flips
        a.verticalFlip = flips
        a.maxRotationDegrees = maxRotationDegrees
        a.rotation = maxRotationDegrees > 0
        a.maxShearRadians = maxShearRadians
        a.shear = maxShearRadians > 0
        a.elasticSigma = elasticSigma
        a.elastic = elasticSigma > 0
        a.brightness = brightness
        a.contrast = contrast
        return a
    }

    /// The augmentation in words, as the training log and model cards show it: "off", or whether
    /// it flips, its magnitudes, the intensity jitter and the plain final epochs.
    public var augmentationSummary: String {
        guard augment else { return "off" }
        var parts = [flips ? "flips" : "no flips", "rotation \(maxRotationDegrees) deg", "shear \(maxShearRadians) rad",
                     "elastic sigma \(elasticSigma) px"]
        if brightness > 0 { parts.append("brightness \(brightness)") }
        if contrast > 0 { parts.append("contrast \(contrast)") }
        if plainEpochs > 0 { parts.append("none in the last \(plainEpochs) epoch(s)") }
        return parts.joined(separator: ", ")
    }

    /// Throws a `TrainingConfigurationError` naming the first invalid value.
    public func validate() throws {
        func fail(_ field: String, _ value: Any, _ expected: String) -> TrainingConfigurationError {
            TrainingConfigurationError(field: field, value: "\(value)", expected: expected)
        }
        guard epochs >= 1 else { throw fail("epochs", epochs, ">= 1") }
        guard batchSize >= 1 && batchSize <= 1024 else { throw fail("batchSize", batchSize, "1...1024") }
        guard tileSize >= 8 && tileSize <= 8192 else { throw fail("tileSize", tileSize, "8...8192") }
        guard learningRate > 0 && learningRate.isFinite else { throw fail("learningRate", learningRate, "a positive number") }
        guard weightDecay >= 0 && weightDecay.isFinite else { throw fail("weightDecay", weightDecay, ">= 0") }
        guard patience >= 0 else { throw fail("patience", patience, ">= 0") }
        guard previewEvery >= 0 else { throw fail("previewEvery", previewEvery, ">= 0") }
        if let validationTileSize, validationTileSize < 16 { throw fail("validationTileSize", validationTileSize, ">= 16") }
        guard timeBudgetSeconds >= 0 else { throw fail("timeBudgetSeconds", timeBudgetSeconds, ">= 0") }
        guard warmupEpochs >= 0 && warmupEpochs < epochs else {
            throw fail("warmupEpochs", warmupEpochs, "0...\(epochs - 1) (fewer than the \(epochs) epochs)")
        }
        guard minimumLearningRate >= 0 && minimumLearningRate <= learningRate else {
            throw fail("minimumLearningRate", minimumLearningRate, "0...\(learningRate) (at most the learning rate)")
        }
        guard stepEpochs >= 1 else { throw fail("stepEpochs", stepEpochs, ">= 1") }
        guard gamma > 0 && gamma < 1 else { throw fail("gamma", gamma, "a factor in (0, 1)") }
        guard plateauPatience >= 0 else { throw fail("plateauPatience", plateauPatience, ">= 0") }
        guard emaDecay >= 0 && emaDecay < 1 else { throw fail("emaDecay", emaDecay, "0 (off) or a decay in (0, 1)") }
        guard maxRotationDegrees >= 0 && maxRotationDegrees <= 180 else {
            throw fail("maxRotationDegrees", maxRotationDegrees, "0...180 degrees")
        }
        guard maxShearRadians >= 0 && maxShearRadians <= 1.5 else {
            throw fail("maxShearRadians", maxShearRadians, "0...1.5 radians (below pi/2)")
        }
        guard elasticSigma >= 0 && elasticSigma <= 1000 else { throw fail("elasticSigma", elasticSigma, "0...1000 pixels") }
        guard brightness >= 0 && brightness <= 1 else { throw fail("brightness", brightness, "0...1 (a shift of [0, 1] intensities)") }
        guard contrast >= 0 && contrast < 1 else { throw fail("contrast", contrast, "0 (off) or a fraction below 1") }
        guard plainEpochs >= 0 && plainEpochs <= epochs else {
            throw fail("plainEpochs", plainEpochs, "0...\(epochs) (at most the \(epochs) epochs)")
        }
        guard folds == 0 || folds >= 2 else { throw fail("folds", folds, "0 (no folds) or at least 2") }
        guard folds == 0 ? fold == 0 : (fold >= 0 && fold < folds) else {
            throw fail("fold", fold, folds == 0 ? "0 without folds" : "0...\(folds - 1)")
        }
    }

    /// The recipe 5-fold cross-validation over the ISBI 2012 training slices chose for a base-16
    /// U-Net on 2 cores (docs/RESULTS.md, "The cross-validated recipe" and its session-8 update):
    /// 50 epochs of 2 x 256^2 crops, Adam at 1e-3 with a one-epoch warmup and a cosine decay, an
    /// average of the weights (decay 0.99), cross-entropy plus soft Dice, the tutorial's rotation
    /// and shear with a milder elastic warp (sigma 5 px), no flips, brightness (0.1) and contrast
    /// (0.2) jitter, and the last 10 epochs on plain crops. About 9 minutes of training on 2 cores.
    public static var recommended: TrainingConfiguration { recommended(epochs: 50) }

    /// The recommended recipe over `epochs` epochs: the last fifth of them (rounded down) train on
    /// plain crops, as 10 of the recipe's 50 do.
    public static func recommended(epochs: Int) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.epochs = epochs
        c.batchSize = 2
        c.tileSize = 256
        c.loss = .crossEntropyDice
        c.learningRate = 1e-3
        c.schedule = .cosine
        c.warmupEpochs = 1
        c.emaDecay = 0.99
        c.flips = false
        c.elasticSigma = 5
        c.brightness = 0.1
        c.contrast = 0.2
        c.plainEpochs = max(0, epochs) / 5
        return c
    }

    /// The learning-rate schedules `unet train --schedule` offers (after the warmup).
    public enum ScheduleKind: String, Codable, Sendable, CaseIterable {
        /// `learningRate` throughout.
        case constant
        /// Cosine annealing from `learningRate` to `minimumLearningRate` over the epochs after the warmup.
        case cosine
        /// `learningRate * gamma^(e / stepEpochs)`, e counted from the end of the warmup.
        case step
        /// `learningRate`, multiplied by `gamma` whenever the mean validation Jaccard has not improved
        /// for more than `plateauPatience` epochs (down to `minimumLearningRate`).
        case plateau
    }
}

/// An invalid `TrainingConfiguration` value.
public struct TrainingConfigurationError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The field.
    public let field: String
    /// The offending value.
    public let value: String
    /// What was expected.
    public let expected: String
    /// `"invalid training configuration: <field> = <value>, expected <expected>"`.
    public var description: String { "invalid training configuration: \(field) = \(value), expected \(expected)" }
}
