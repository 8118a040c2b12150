import NN

/// The learning rate of every batch of a run: a linear warmup over the first
/// `warmupEpochs` epochs (per batch), then the configured schedule (`ScheduleKind`) over the rest.
///
/// The rate is a function of the configuration, the position in the run and the finished epochs'
/// records (which `.plateau` needs), so a resumed run, which restores its history, continues with the
/// rates an uninterrupted run would have used. The schedules are NN's: `CosineSchedule` with a period
/// of `epochs - warmupEpochs`, `StepSchedule`, and `ReduceOnPlateau` maximizing the mean validation
/// Jaccard, replayed over the history.
public struct LearningRatePlan: Sendable {
    /// The run's settings.
    public let configuration: TrainingConfiguration
    /// Batches per epoch (the warmup grows the rate once per batch).
    public let batchesPerEpoch: Int

    /// A plan for `configuration` with `batchesPerEpoch` batches per epoch (at least 1).
    public init(configuration: TrainingConfiguration, batchesPerEpoch: Int) {
        self.configuration = configuration
        self.batchesPerEpoch = max(1, batchesPerEpoch)
    }

    /// The rate of `batch` (1-based) of `epoch` (1-based); `history` holds the finished epochs
    /// before `epoch` (only `.plateau` reads it).
    public func rate(epoch: Int, batch: Int, history: [EpochRecord]) -> Float {
        let c = configuration
        if epoch <= c.warmupEpochs {
            let step = (epoch - 1) * batchesPerEpoch + min(max(batch, 1), batchesPerEpoch)
            return c.learningRate * Float(step) / Float(c.warmupEpochs * batchesPerEpoch)
        }
        return scheduledRate(epoch: epoch, history: history)
    }

    /// The schedule's rate of `epoch` (1-based, after the warmup): the rate of all its batches.
    public func scheduledRate(epoch: Int, history: [EpochRecord]) -> Float {
        let c = configuration
        let e = max(0, epoch - 1 - c.warmupEpochs)    // 0-based epoch of the schedule
        switch c.schedule {
        case .constant:
            return c.learningRate
        case .cosine:
            return CosineSchedule(initialRate: c.learningRate, periodEpochs: max(1, c.epochs - c.warmupEpochs),
                                  minimumRate: c.minimumLearningRate).rate(atEpoch: e)
        case .step:
            return StepSchedule(initialRate: c.learningRate, stepSize: max(1, c.stepEpochs), gamma: c.gamma).rate(atEpoch: e)
        case .plateau:
            var plateau = ReduceOnPlateau(mode: .maximize, factor: c.gamma, patience: c.plateauPatience,
                                          minimumRate: c.minimumLearningRate)
            var rate = c.learningRate
            for record in history where record.epoch > c.warmupEpochs && record.epoch < epoch {
                rate = plateau.nextRate(afterEpoch: record.epoch - 1, currentRate: rate, metric: record.meanValidationJaccard)
            }
            return rate
        }
    }
}
