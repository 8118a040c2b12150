import Foundation
import NN
import Tensor

/// What the trainer reports while it runs.
public enum TrainingEvent {
    /// A batch finished: epoch (1-based), batch (1-based) of `batches`, its loss, throughput.
    case batch(epoch: Int, batch: Int, batches: Int, loss: Double, imagesPerSecond: Double)
    /// Validation started for `epoch`.
    case validating(epoch: Int)
    /// An epoch finished.
    case epoch(EpochRecord)
    /// A checkpoint was written.
    case checkpoint(URL)
    /// Free-form information (resumed, early stop, ...).
    case message(String)
}

/// Why `Trainer.run()` returned.
public enum TrainingOutcome: Equatable, Sendable {
    /// All epochs ran.
    case completed
    /// Mean validation Jaccard did not improve for `patience` epochs.
    case earlyStopped(bestEpoch: Int)
    /// The time budget ran out.
    case timeBudgetReached
    /// `shouldStop` returned true; the last checkpoint holds the weights at that point.
    case interrupted(checkpoint: URL)
}

/// A training failure that is not a programming error.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    /// The loss became NaN or infinite.
    case nonFiniteLoss(epoch: Int, batch: Int, value: Double)
    /// The data cannot be trained on.
    case unusableData(String)

    /// One line naming the epoch and batch, or what is wrong with the data.
    public var description: String {
        switch self {
        case let .nonFiniteLoss(epoch, batch, value):
            return "training diverged: loss is \(value) at epoch \(epoch), batch \(batch); try a lower --lr"
        case let .unusableData(reason): return reason
        }
    }
}

/// Trains a U-Net on labelled EM slices as the tutorial does: Adam, augmented crops, the tutorial's
/// per-epoch line, validation on whole slices, best/last checkpoints, early stopping and resume.
///
/// The run folder receives `config.json`, `metrics.csv`, `training-curve.svg`, `best.safetensors`,
/// `last.safetensors` and `previews/`. Every file is written atomically.
public final class Trainer {
    /// The network being trained.
    public let model: UNetModel
    /// Training settings.
    public private(set) var configuration: TrainingConfiguration
    /// Labelled slices to train on.
    public let trainSlices: [EMSlice]
    /// Labelled slices to validate on.
    public let validationSlices: [EMSlice]
    /// Where outputs go.
    public let runFolder: URL
    /// Describes the data source in config.json and checkpoints.
    public var dataDescription: String
    /// Finished epochs, in order (including those before a resume).
    public private(set) var history: [EpochRecord] = []
    /// Called on the training thread for every event.
    public var onEvent: ((TrainingEvent) -> Void)?
    /// With several processes: normalize batch norm with the statistics of the whole job's batch
    /// (synchronized batch norm, one extra all-reduce per layer and pass) instead of each process's
    /// own share. Set before `run()`; ignored by a single process.
    public var synchronizesBatchNorm = false
    /// Polled between batches; returning true saves a checkpoint and stops (for Ctrl-C).
    public var shouldStop: () -> Bool = { false }

    let optimizer: Optimizer
    /// The moving average of the weights (`configuration.emaDecay > 0`): validated and saved as the model.
    let ema: ExponentialMovingAverage?
    let inputSize: Int, outputSize: Int
    /// The processes training together; rank 0 alone reports events and writes the run folder.
    public let collective: Collective
    let gradients: GradientSynchronizer
    /// This rank's part of each batch's items.
    let items: Range<Int>

    /// The run's settings in the run folder (model, training, data, slices, thread count).
    static let runConfigurationFileName = "config.json"
    /// The name of the checkpoint of the best epoch in a run folder.
    public static let bestCheckpointFileName = "best.safetensors"
    /// The name of the checkpoint of the last finished epoch in a run folder.
    public static let lastCheckpointFileName = "last.safetensors"

    /// The checkpoint of the latest epoch (or of an interruption), in the run folder.
    public var lastCheckpoint: URL { runFolder.appendingPathComponent(Self.lastCheckpointFileName) }
    /// The checkpoint with the best mean validation Jaccard.
    public var bestCheckpoint: URL { runFolder.appendingPathComponent(Self.bestCheckpointFileName) }

    /// A trainer for `model`. Throws when the configuration is invalid or the data unusable.
    ///
    /// With a `collective` of K processes (data parallelism), each rank holds a replica and takes
    /// its share of every batch's tiles (`batchSize` stays the global batch); gradients are summed
    /// over the ranks after each backward pass and every rank takes the same optimizer step. Rank 0
    /// alone calls `onEvent` and writes the run folder. Every rank must be given the same slices
    /// and configuration.
    public init(model: UNetModel, trainSlices: [EMSlice], validationSlices: [EMSlice],
                configuration: TrainingConfiguration, runFolder: URL, dataDescription: String = "",
                collective: Collective = SingleProcess()) throws {
        try configuration.validate()
        guard configuration.batchSize >= collective.size else {
            throw TrainingError.unusableData("a batch of \(configuration.batchSize) tile(s) cannot be split over \(collective.size) processes: use a batch size of at least \(collective.size)")
        }
        guard !trainSlices.isEmpty else { throw TrainingError.unusableData("no training slices") }
        guard trainSlices.allSatisfy({ $0.label != nil }), validationSlices.allSatisfy({ $0.label != nil }) else {
            throw TrainingError.unusableData("every training and validation slice needs labels")
        }
        let channels = model.configuration.inputChannels
        if let odd = (trainSlices + validationSlices).first(where: { $0.inputPlanes.count != channels }) {
            throw TrainingError.unusableData("slice \(odd.index) has \(odd.inputPlanes.count) input plane(s), the model takes \(channels) (2.5D context of \(model.configuration.contextSlices) slice(s) on each side)")
        }
        self.model = model
        self.configuration = configuration
        self.trainSlices = trainSlices
        self.validationSlices = validationSlices
        self.runFolder = runFolder
        self.dataDescription = dataDescription
        let unet = model.configuration
        inputSize = unet.validInputSize(atLeast: configuration.tileSize)
        outputSize = unet.outputSize(forInputSize: inputSize)!
        let named = model.namedParameters()
        switch configuration.optimizer {
        case .adam: optimizer = Adam(parameters: named, learningRate: configuration.learningRate)
        case .adamw: optimizer = AdamW(parameters: named, learningRate: configuration.learningRate,
                                       weightDecay: configuration.weightDecay)
        case .sgd: optimizer = SGD(parameters: named, learningRate: configuration.learningRate,
                                   momentum: configuration.momentum, weightDecay: configuration.weightDecay)
        }
        ema = configuration.emaDecay > 0 ? ExponentialMovingAverage(module: model, decay: configuration.emaDecay) : nil
        self.collective = collective
        gradients = GradientSynchronizer(parameters: named.map(\.1), collective: collective)
        let (k, r, b) = (collective.size, collective.rank, configuration.batchSize)
        items = (r * b / k)..<((r + 1) * b / k)
        if collective.isLeader {
            try FileManager.default.createDirectory(at: runFolder, withIntermediateDirectories: true)
        }
    }

    /// Continues the run saved in `checkpoint` (a `last.safetensors` or `best.safetensors` of this
    /// trainer): restores the weights, the optimizer state, the epoch count and the history.
    /// `epochs` (if given) replaces the total number of epochs.
    ///
    /// - Throws: `SafeTensorsError` for a file that is not valid safetensors; `UNetCheckpointError` for
    ///   one without a valid model and training configuration; `CheckpointError` when the weights or
    ///   the optimizer state do not fit the configuration.
    public static func resuming(from checkpoint: URL, trainSlices: [EMSlice], validationSlices: [EMSlice],
                                runFolder: URL, epochs: Int? = nil, dataDescription: String = "",
                                collective: Collective = SingleProcess()) throws -> Trainer {
        let summary = try CheckpointSummary.load(from: checkpoint)
        var training = try summary.resumableTrainingConfiguration()
        if let epochs { training.epochs = epochs }
        // The training seed, as for a new run: it also seeds the model's dropout stream.
        var rng = SeededGenerator(seed: training.seed)
        let model = UNetModel(configuration: summary.model, generator: &rng)
        let trainer = try Trainer(model: model, trainSlices: trainSlices, validationSlices: validationSlices,
                                  configuration: training, runFolder: runFolder, dataDescription: dataDescription,
                                  collective: collective)
        try TrainingCheckpoint.load(from: checkpoint.path, into: model, optimizer: trainer.optimizer, ema: trainer.ema,
                                    strict: true)
        trainer.history = summary.history
        return trainer
    }

    /// Runs epochs until done, early-stopped, out of time, or interrupted. Throws on a non-finite
    /// loss (after saving nothing: the last good checkpoint stays) and on I/O failures.
    @discardableResult
    public func run() throws -> TrainingOutcome {
        removeStaleTemporaries()
        try writeConfigJSON()
        let sampler = BatchSampler(slices: trainSlices, batchSize: configuration.batchSize, inputSize: inputSize,
                                   outputSize: outputSize, augmentation: configuration.augmentation(tileSize: inputSize),
                                   loss: configuration.loss, seed: configuration.seed)
        // The last `plainEpochs` epochs draw plain crops, seeded like the augmented ones.
        let plainSampler = BatchSampler(slices: trainSlices, batchSize: configuration.batchSize, inputSize: inputSize,
                                        outputSize: outputSize, augmentation: .none(tileWidth: inputSize, tileHeight: inputSize),
                                        loss: configuration.loss, seed: configuration.seed)
        let batches = sampler.batchesPerEpoch
        let plan = LearningRatePlan(configuration: configuration, batchesPerEpoch: batches)
        let started = Date()
        if collective.size > 1 { try synchronizeReplicas() }
        let summing: BatchNormStatisticsSum? = collective.size > 1 && synchronizesBatchNorm
            ? { [collective] in collective.allReduceSum(&$0) } : nil
        for module in model.allModules() { (module as? BatchNorm2d)?.synchronizeStatistics = summing }
        if !history.isEmpty {
            report(.message("resumed after epoch \(history.last!.epoch) (best mean Jaccard \(String(format: "%.4f", bestRecord?.meanValidationJaccard ?? 0)))"))
        }
        model.train()
        while history.count < configuration.epochs {
            let epoch = history.count + 1
            let epochStart = Date()
            var lossSum = 0.0
            let items = self.items
            let epochSampler = configuration.isPlainEpoch(epoch) ? plainSampler : sampler
            if configuration.augment, configuration.isPlainEpoch(epoch), !configuration.isPlainEpoch(epoch - 1) {
                report(.message("epochs \(epoch)-\(configuration.epochs) train on plain crops, without augmentation"))
            }
            let prefetcher = Prefetcher(count: batches, depth: 2) { epochSampler.batch(epoch: epoch, index: $0, items: items) }
            defer { prefetcher.cancel() }
            for b in 1...batches {
                if collective.any(shouldStop()) {
                    prefetcher.cancel()
                    try saveCheckpoint(to: lastCheckpoint)
                    return .interrupted(checkpoint: lastCheckpoint)
                }
                let stepStart = Date()
                let batch = OpProfiler.measure("data loading (wait)") { prefetcher.next()! }
                optimizer.learningRate = plan.rate(epoch: epoch, batch: b, history: history)
                model.reseedDropout(seed: configuration.seed, epoch: epoch, batch: b)
                let loss = trainStep(batch)
                ema?.update()
                guard loss.isFinite else { throw TrainingError.nonFiniteLoss(epoch: epoch, batch: b, value: loss) }
                lossSum += loss
                let seconds = Date().timeIntervalSince(stepStart)
                report(.batch(epoch: epoch, batch: b, batches: batches, loss: loss,
                                imagesPerSecond: Double(configuration.batchSize) / max(seconds, 1e-9)))
            }
            report(.validating(epoch: epoch))
            let validation = ema.map { ema in ema.withAveragedWeights { validate(epoch: epoch) } } ?? validate(epoch: epoch)
            model.train()
            let record = EpochRecord(epoch: epoch, trainCost: lossSum / Double(batches), validationCost: validation.cost,
                                     validationAccuracy: validation.accuracy, validationJaccard: validation.jaccard,
                                     seconds: Date().timeIntervalSince(epochStart),
                                     learningRate: Double(optimizer.learningRate))
            let improved = record.meanValidationJaccard > (bestRecord?.meanValidationJaccard ?? -1)
            history.append(record)
            report(.epoch(record))
            if improved {
                try saveCheckpoint(to: bestCheckpoint)
                report(.checkpoint(bestCheckpoint))
            }
            try saveCheckpoint(to: lastCheckpoint)
            // After the checkpoints: when one cannot be written, the logs still end where it does.
            try writeLogs()
            if configuration.patience > 0, let best = bestRecord, epoch - best.epoch >= configuration.patience {
                report(.message("early stopping: no better mean validation Jaccard for \(configuration.patience) epochs (best \(String(format: "%.4f", best.meanValidationJaccard)) at epoch \(best.epoch))"))
                return .earlyStopped(bestEpoch: best.epoch)
            }
            // Rank 0's clock decides, so that every rank stops after the same epoch.
            let outOfTime = configuration.timeBudgetSeconds > 0 && Date().timeIntervalSince(started) >= configuration.timeBudgetSeconds
            if collective.any(collective.isLeader && outOfTime) {
                report(.message("time budget of \(Int(configuration.timeBudgetSeconds)) s reached after epoch \(epoch)"))
                return .timeBudgetReached
            }
        }
        return .completed
    }

    /// The epoch with the best mean validation Jaccard so far.
    public var bestRecord: EpochRecord? { history.max { $0.meanValidationJaccard < $1.meanValidationJaccard } }

    /// One optimizer step on `batch` (this rank's tiles of the global batch); returns the data loss
    /// of the global batch.
    func trainStep(_ batch: TrainingBatch) -> Double {
        optimizer.zeroGradients()
        let logits = model(batch.images)
        let data = segmentationLoss(configuration.loss, logits: logits, targets: batch.targets, weights: batch.weights)
        let usesPenalty = configuration.weightDecay > 0 && configuration.optimizer == .adam
        guard collective.size > 1 else {
            let total = usesPenalty ? data + l2Penalty(of: model, lambda: configuration.weightDecay) : data
            total.backward()
            optimizer.step()
            return Double(data.scalar)
        }
        // The global loss is the mean over all tiles: each rank's mean weighted by its share of the
        // batch. The weight penalty is the same on every rank, so each adds 1/K of it; the summed
        // gradients are then those of one process on the whole batch.
        let share = Float(items.count) / Float(configuration.batchSize)
        let local = data * share
        let total = usesPenalty ? local + l2Penalty(of: model, lambda: configuration.weightDecay) / Float(collective.size) : local
        total.backward()
        gradients.synchronize()
        optimizer.step()
        var loss = [Double(local.scalar)]
        collective.allReduceSum(&loss)
        return loss[0]
    }

    /// Calls `onEvent` on rank 0.
    func report(_ event: TrainingEvent) {
        if collective.isLeader { onEvent?(event) }
    }

    /// Copies rank 0's parameters, buffers (batch-norm statistics) and optimizer state to every rank,
    /// so the replicas start equal whatever each rank initialised or loaded.
    func synchronizeReplicas() throws {
        for (_, parameter) in model.namedParameters() {
            var values = parameter.value.scalars
            collective.broadcast(&values, from: 0)
            parameter.assign(Tensor(shape: parameter.shape, scalars: values))
        }
        for (_, buffer) in model.namedBuffers() {
            var values = buffer.value.scalars
            collective.broadcast(&values, from: 0)
            buffer.assign(Tensor(shape: buffer.value.shape, scalars: values))
        }
        let state = optimizer.exportState()
        var tensors: [(String, Tensor)] = []
        for (name, tensor) in state.tensors {
            var values = tensor.scalars
            collective.broadcast(&values, from: 0)
            tensors.append((name, Tensor(shape: tensor.shape, scalars: values)))
        }
        let keys = state.scalars.keys.sorted()
        var scalars = keys.map { state.scalars[$0]! }
        scalars.withUnsafeMutableBytes { collective.broadcast($0, from: 0) }
        try optimizer.importState(OptimizerState(tensors: tensors, scalars: Dictionary(uniqueKeysWithValues: zip(keys, scalars))))
        if let ema {
            var updates = ema.updates
            withUnsafeMutableBytes(of: &updates) { collective.broadcast($0, from: 0) }
            let averaged = ema.averagedState().map { name, tensor -> (String, Tensor) in
                var values = tensor.scalars
                collective.broadcast(&values, from: 0)
                return (name, Tensor(shape: tensor.shape, scalars: values))
            }
            try ema.restore(averaged, updates: updates)
        }
    }

    /// The memory the default validation tile may take (`TrainingConfiguration.validationTileSize`
    /// nil): 1 GiB, which validates a 512^2 slice whole up to base 16 at depth 5, and stays a
    /// fraction of what training itself holds at larger bases.
    public static let validationTileBudgetBytes = 1 << 30

    /// The validation tile side: the configured one, or one chosen for the largest validation slice.
    public var validationTileSize: Int {
        if let size = configuration.validationTileSize { return size }
        let width = validationSlices.map(\.width).max() ?? 0, height = validationSlices.map(\.height).max() ?? 0
        return Segmenter.automaticTileSize(width: width, height: height, configuration: model.configuration,
                                           memoryBudgetBytes: Self.validationTileBudgetBytes)
    }

    func validate(epoch: Int) -> EvaluationResult {
        let segmenter = Segmenter(model: model, tileSize: validationTileSize)
        let wantsPreview = configuration.previewEvery > 0 && (epoch % configuration.previewEvery == 0 || epoch == 1)
        return segmenter.evaluate(validationSlices, isbiScores: false, collective: collective) { slice, probabilities in
            guard wantsPreview, slice.index == self.validationSlices.first?.index else { return }
            let folder = self.runFolder.appendingPathComponent("previews")
            try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let url = folder.appendingPathComponent(String(format: "epoch-%03d-slice-%02d.png", epoch, slice.index))
            try? PredictionPreview.write(image: slice.imagePlane, probabilities: probabilities, labels: slice.label, to: url)
        }
    }

    func saveCheckpoint(to url: URL) throws {
        guard collective.isLeader else { return }
        try TrainingCheckpoint.save(model: model, optimizer: optimizer, ema: ema, metadata: checkpointMetadata(), to: url.path)
    }

    func checkpointMetadata() -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func json<T: Encodable>(_ value: T) -> String { String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self) }
        var metadata: [String: String] = [
            MetadataKey.model: json(model.configuration),
            MetadataKey.training: json(configuration),
            MetadataKey.epoch: String(history.count),
            MetadataKey.history: json(history),
            MetadataKey.data: dataDescription,
        ]
        if let best = bestRecord {
            metadata[MetadataKey.bestEpoch] = String(best.epoch)
            metadata[MetadataKey.bestMeanJaccard] = String(best.meanValidationJaccard)
        }
        return metadata
    }

    func writeConfigJSON() throws {
        guard collective.isLeader else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        struct RunConfiguration: Encodable {
            var model: UNetConfiguration
            var training: TrainingConfiguration
            var data: String
            var inputTile: Int
            var outputTile: Int
            var trainSlices: [Int]
            var validationSlices: [Int]
            var parameters: Int
            var threads: Int
            var processes: Int
            var syncBatchNorm: Bool
        }
        let config = RunConfiguration(model: model.configuration, training: configuration, data: dataDescription,
                                      inputTile: inputSize, outputTile: outputSize,
                                      trainSlices: trainSlices.map(\.index), validationSlices: validationSlices.map(\.index),
                                      parameters: model.parameterCount, threads: Threads.count,
                                      processes: collective.size, syncBatchNorm: collective.size > 1 && synchronizesBatchNorm)
        try AtomicFileWriter.write(Array(encoder.encode(config)), to: runFolder.appendingPathComponent(Self.runConfigurationFileName).path)
    }

    func writeLogs() throws {
        guard collective.isLeader else { return }
        try Self.writeLogs(history: history, model: model.configuration, to: runFolder)
    }

    /// Writes `metrics.csv` and `training-curve.svg` of `history` into `runFolder`, atomically.
    static func writeLogs(history: [EpochRecord], model: UNetConfiguration, to runFolder: URL) throws {
        let csv = ([EpochRecord.csvHeader(classes: model.classes)] + history.map(\.csvRow)).joined(separator: "\n") + "\n"
        try AtomicFileWriter.write(Array(csv.utf8), to: runFolder.appendingPathComponent("metrics.csv").path)
        try AtomicFileWriter.write(Array(trainingCurveSVG(history, title: model.summary).utf8),
                                   to: runFolder.appendingPathComponent("training-curve.svg").path)
    }

    /// Brings `metrics.csv` and `training-curve.svg` next to `checkpoint` up to the history it holds,
    /// when `metrics.csv` has fewer epochs (a kill between the checkpoint and the logs leaves them
    /// one epoch short). Returns true when it rewrote them.
    /// - Throws: `CheckpointSummary`'s errors for an unreadable checkpoint; `FileWriteError`.
    @discardableResult
    public static func completeLogs(of checkpoint: URL) throws -> Bool {
        let summary = try CheckpointSummary.load(from: checkpoint)
        let metrics = checkpoint.deletingLastPathComponent().appendingPathComponent("metrics.csv")
        let rows = (try? String(contentsOf: metrics, encoding: .utf8))?.split(separator: "\n").count ?? 0
        guard rows - 1 < summary.history.count else { return false }
        try writeLogs(history: summary.history, model: summary.model, to: checkpoint.deletingLastPathComponent())
        return true
    }
}
