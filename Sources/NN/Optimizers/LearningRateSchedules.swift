#if canImport(Glibc)
import Glibc
#endif

/// A learning-rate schedule the trainer calls once at the end of every epoch.
///
/// ```swift
/// var schedule = StepSchedule(initialRate: 1e-3, stepSize: 10, gamma: 0.5)
/// for epoch in 0..<epochs {
///     trainOneEpoch()
///     schedule.update(optimizer, afterEpoch: epoch, metric: validationLoss)
/// }
/// ```
public protocol LearningRateSchedule {
    /// The learning rate for the epoch after `epoch` (0-based, just finished), given the current rate
    /// and the epoch's monitored metric (used by `ReduceOnPlateau`; nil when there is none).
    mutating func nextRate(afterEpoch epoch: Int, currentRate: Float, metric: Double?) -> Float
    /// Scalars that restore the schedule's progress on resume (empty for stateless schedules).
    func exportState() -> [String: Double]
    /// Restores progress saved by `exportState()`.
    mutating func importState(_ state: [String: Double]) throws
}

extension LearningRateSchedule {
    /// No state: stateless schedules depend on the epoch alone.
    public func exportState() -> [String: Double] { [:] }
    /// Nothing to restore for stateless schedules.
    public mutating func importState(_ state: [String: Double]) throws {}

    /// Sets `optimizer.learningRate` to the rate for the next epoch; returns it.
    @discardableResult
    public mutating func update(_ optimizer: Optimizer, afterEpoch epoch: Int, metric: Double? = nil) -> Float {
        optimizer.learningRate = nextRate(afterEpoch: epoch, currentRate: optimizer.learningRate, metric: metric)
        return optimizer.learningRate
    }
}

/// Multiplies the rate by `gamma` every `stepSize` epochs (PyTorch `StepLR`):
/// the rate of epoch `e` is `initialRate * gamma^(e / stepSize)`.
public struct StepSchedule: LearningRateSchedule, Sendable {
    /// The rate of epoch 0.
    public var initialRate: Float
    /// Epochs between decays.
    public var stepSize: Int
    /// Decay factor.
    public var gamma: Float

    /// Creates the schedule.
    public init(initialRate: Float, stepSize: Int, gamma: Float = 0.1) {
        precondition(stepSize >= 1, "StepSchedule: stepSize \(stepSize) must be >= 1")
        self.initialRate = initialRate
        self.stepSize = stepSize
        self.gamma = gamma
    }

    /// The rate of epoch `epoch` (0-based).
    public func rate(atEpoch epoch: Int) -> Float {
        Float(Double(initialRate) * pow(Double(gamma), Double(epoch / stepSize)))
    }

    /// `rate(atEpoch: epoch + 1)`.
    public func nextRate(afterEpoch epoch: Int, currentRate: Float, metric: Double?) -> Float { rate(atEpoch: epoch + 1) }
}

/// Cosine annealing from `initialRate` to `minimumRate` over `periodEpochs` epochs (PyTorch
/// `CosineAnnealingLR`, closed form): `min + (initial - min) * (1 + cos(pi * e / period)) / 2`,
/// staying at `minimumRate` after the period.
public struct CosineSchedule: LearningRateSchedule, Sendable {
    /// The rate of epoch 0.
    public var initialRate: Float
    /// Epochs to reach `minimumRate`.
    public var periodEpochs: Int
    /// The final rate.
    public var minimumRate: Float

    /// Creates the schedule.
    public init(initialRate: Float, periodEpochs: Int, minimumRate: Float = 0) {
        precondition(periodEpochs >= 1, "CosineSchedule: periodEpochs \(periodEpochs) must be >= 1")
        self.initialRate = initialRate
        self.periodEpochs = periodEpochs
        self.minimumRate = minimumRate
    }

    /// The rate of epoch `epoch` (0-based).
    public func rate(atEpoch epoch: Int) -> Float {
        let e = Double(min(max(epoch, 0), periodEpochs))
        let lo = Double(minimumRate), hi = Double(initialRate)
        return Float(lo + (hi - lo) * (1 + cos(Double.pi * e / Double(periodEpochs))) / 2)
    }

    /// `rate(atEpoch: epoch + 1)`.
    public func nextRate(afterEpoch epoch: Int, currentRate: Float, metric: Double?) -> Float { rate(atEpoch: epoch + 1) }
}

/// Reduces the rate by `factor` when the monitored metric has not improved for more than `patience`
/// epochs (PyTorch `ReduceLROnPlateau` with a relative threshold): an epoch improves when
/// `metric < best * (1 - threshold)` (mode `.minimize`) or `metric > best * (1 + threshold)`
/// (`.maximize`). After a reduction, `cooldown` epochs pass before bad epochs count again.
public struct ReduceOnPlateau: LearningRateSchedule, Sendable {
    /// Whether smaller or larger metric values are better.
    public enum Mode: Sendable {
        /// Smaller is better (a loss).
        case minimize
        /// Larger is better (an accuracy, a Jaccard).
        case maximize
    }

    /// Whether the monitored metric is to be minimized or maximized.
    public var mode: Mode
    /// Multiplier applied to the rate on a plateau.
    public var factor: Float
    /// Bad epochs tolerated before reducing.
    public var patience: Int
    /// Relative improvement needed to count as better.
    public var threshold: Double
    /// Epochs to wait after a reduction before counting bad epochs.
    public var cooldown: Int
    /// The rate never goes below this.
    public var minimumRate: Float
    /// The best metric seen so far.
    public private(set) var best: Double?
    /// Consecutive epochs without improvement.
    public private(set) var badEpochs = 0
    /// Epochs of cooldown left.
    public private(set) var cooldownLeft = 0

    /// Creates the schedule (PyTorch defaults).
    public init(mode: Mode = .minimize, factor: Float = 0.1, patience: Int = 10, threshold: Double = 1e-4,
                cooldown: Int = 0, minimumRate: Float = 0) {
        precondition(factor > 0 && factor < 1, "ReduceOnPlateau: factor \(factor) must be in (0, 1)")
        precondition(patience >= 0 && cooldown >= 0, "ReduceOnPlateau: patience and cooldown must be >= 0")
        self.mode = mode
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.cooldown = cooldown
        self.minimumRate = minimumRate
    }

    func isBetter(_ value: Double, than best: Double) -> Bool {
        switch mode {
        case .minimize: return value < best * (1 - threshold)
        case .maximize: return value > best * (1 + threshold)
        }
    }

    /// Counts the epoch as good or bad by `metric` and returns the reduced rate once more than
    /// `patience` bad epochs have passed; the current rate otherwise, or when `metric` is nil.
    public mutating func nextRate(afterEpoch epoch: Int, currentRate: Float, metric: Double?) -> Float {
        guard let metric else { return currentRate }
        if let b = best, !isBetter(metric, than: b) {
            badEpochs += 1
        } else {
            best = metric
            badEpochs = 0
        }
        if cooldownLeft > 0 {
            cooldownLeft -= 1
            badEpochs = 0
        }
        guard badEpochs > patience else { return currentRate }
        cooldownLeft = cooldown
        badEpochs = 0
        let reduced = max(currentRate * factor, minimumRate)
        return currentRate - reduced > 1e-8 ? reduced : currentRate
    }

    /// `best` (when known), `bad_epochs` and `cooldown_left`.
    public func exportState() -> [String: Double] {
        var state: [String: Double] = ["bad_epochs": Double(badEpochs), "cooldown_left": Double(cooldownLeft)]
        if let best { state["best"] = best }
        return state
    }

    /// Restores `exportState()`; throws `OptimizerStateError` when a count is missing or invalid.
    public mutating func importState(_ state: [String: Double]) throws {
        guard let bad = state["bad_epochs"], let cool = state["cooldown_left"], bad >= 0, cool >= 0,
              bad < 1e9, cool < 1e9 else {
            throw OptimizerStateError("ReduceOnPlateau state needs bad_epochs and cooldown_left, got \(state)")
        }
        best = state["best"]
        badEpochs = Int(bad)
        cooldownLeft = Int(cool)
    }
}
