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
    /// Augmentation (rotation, shear, flips, elastic warp) on the training crops.
    public var augment: Bool = true
    /// Stop after this many epochs without a better mean validation Jaccard (0 = never).
    public var patience: Int = 0
    /// Seed of initialization, sampling, augmentation and dropout.
    public var seed: UInt64 = 0
    /// Write PNG previews of validation predictions every this many epochs (0 = never).
    public var previewEvery: Int = 5
    /// Validation tile side for overlap-tile inference.
    public var validationTileSize: Int = 512
    /// Stop after this many seconds of training (0 = no limit); the epoch in progress finishes.
    public var timeBudgetSeconds: Double = 0

    /// The defaults.
    public init() {}

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
        guard validationTileSize >= 16 else { throw fail("validationTileSize", validationTileSize, ">= 16") }
        guard timeBudgetSeconds >= 0 else { throw fail("timeBudgetSeconds", timeBudgetSeconds, ">= 0") }
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
