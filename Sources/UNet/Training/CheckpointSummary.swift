import Foundation
import NN
import Tensor

/// The metadata keys of swift-unet training checkpoints (see docs/CHECKPOINTS.md).
public enum MetadataKey {
    /// JSON of the `UNetConfiguration`.
    public static let model = "unet.model"
    /// JSON of the `TrainingConfiguration`.
    public static let training = "unet.training"
    /// Completed epochs.
    public static let epoch = "unet.epoch"
    /// JSON array of `EpochRecord`.
    public static let history = "unet.history"
    /// Data source description (the data folder for runs of `unet train`).
    public static let data = "unet.data"
    /// Epoch of the best mean validation Jaccard.
    public static let bestEpoch = "unet.best_epoch"
    /// The best mean validation Jaccard.
    public static let bestMeanJaccard = "unet.best_mean_jaccard"
    /// The cell-probability threshold for instance labels, chosen by `unet evaluate --store-threshold`.
    public static let threshold = "unet.threshold"
    /// What the threshold was chosen on (checkpoint-independent description, e.g. the slices).
    public static let thresholdSource = "unet.threshold_source"
}

/// What a swift-unet checkpoint (a run's `best.safetensors` or `last.safetensors`) says about itself,
/// read from the file's header without loading the weights: the architecture, the training settings,
/// the epochs done and their metrics, and the data the run used.
///
/// ```swift
/// let checkpoint = try CheckpointSummary.load(from: URL(fileURLWithPath: "runs/x/best.safetensors"))
/// print(checkpoint.model.summary, checkpoint.parameterCount)
/// let model = try checkpoint.makeModel()       // the architecture, with the file's weights
/// model.eval()
/// ```
///
/// Only the model configuration is required. The other metadata is informational: a value that is
/// absent or unreadable reads as `nil` (or an empty history), except where an operation needs it
/// (`resumableTrainingConfiguration()`), which then throws.
public struct CheckpointSummary: Sendable {
    /// The checkpoint file, as given to `load`.
    public let path: String
    /// The header's metadata, every key (the `unet.` keys of `MetadataKey`, the optimizer's, `format`).
    public let metadata: [String: String]
    /// Every tensor in the file by name and shape, in file order (model and optimizer state).
    public let tensors: [(name: String, shape: [Int])]
    /// The architecture (`unet.model`), validated.
    public let model: UNetConfiguration
    /// The training settings (`unet.training`); nil when absent or unreadable.
    public let training: TrainingConfiguration?
    /// The number of completed epochs (`unet.epoch`); nil when absent or not a number.
    public let epoch: Int?
    /// The finished epochs' figures (`unet.history`); empty when absent or unreadable.
    public let history: [EpochRecord]
    /// The epoch with the best mean validation Jaccard (`unet.best_epoch`), if recorded.
    public let bestEpoch: Int?
    /// That best mean validation Jaccard (`unet.best_mean_jaccard`), if recorded.
    public let bestMeanJaccard: Double?
    /// The data the run trained on (`unet.data`, a folder for runs of `unet train`); nil when empty.
    public let dataDescription: String?

    /// The instance threshold stored by `storeThreshold` (`unet.threshold`); nil when absent or not
    /// a number in [0, 1].
    public var storedThreshold: Float? {
        guard let text = metadata[MetadataKey.threshold], let value = Float(text), value >= 0 && value <= 1 else { return nil }
        return value
    }

    /// Writes `threshold` (in [0, 1]) and a note of what it was chosen on into the metadata of the
    /// checkpoint at `path`, atomically, keeping every tensor and every other key.
    ///
    /// - Throws: `SafeTensorsError` when the file cannot be read or written.
    public static func storeThreshold(_ threshold: Float, source: String, in path: String) throws {
        precondition(threshold >= 0 && threshold <= 1, "storeThreshold: \(threshold) outside [0, 1]")
        let file = try SafeTensors.read(from: path)
        var metadata = file.metadata
        metadata[MetadataKey.threshold] = String(threshold)
        metadata[MetadataKey.thresholdSource] = source
        try SafeTensors(tensors: file.tensors, metadata: metadata).write(to: path)
    }

    /// Reads and checks the header of the checkpoint at `url`.
    ///
    /// - Throws: `SafeTensorsError` when the file is missing or not valid safetensors;
    ///   `UNetCheckpointError` when it has no readable, valid `unet.model` configuration.
    public static func load(from url: URL) throws -> CheckpointSummary {
        try load(path: url.path)
    }

    /// Reads and checks the header of the checkpoint at `path`. See `load(from:)`.
    public static func load(path: String) throws -> CheckpointSummary {
        let header = try SafeTensors.readHeader(from: path)
        let metadata = header.metadata
        func fail(_ problem: UNetCheckpointError.Problem) -> UNetCheckpointError {
            UNetCheckpointError(path: path, problem: problem)
        }
        guard let modelJSON = metadata[MetadataKey.model] else { throw fail(.noModelConfiguration) }
        guard let model = decode(UNetConfiguration.self, modelJSON) else {
            throw fail(.unreadableMetadata(key: MetadataKey.model, expected: "a U-Net configuration as JSON"))
        }
        do {
            try model.validate()
        } catch let error as UNetConfigurationError {
            throw fail(.invalidModelConfiguration(error))
        }
        let recordedData = metadata[MetadataKey.data] ?? ""
        return CheckpointSummary(
            path: path, metadata: metadata, tensors: header.shapes, model: model,
            training: metadata[MetadataKey.training].flatMap { decode(TrainingConfiguration.self, $0) },
            epoch: metadata[MetadataKey.epoch].flatMap { Int($0) },
            history: metadata[MetadataKey.history].flatMap { decode([EpochRecord].self, $0) } ?? [],
            bestEpoch: metadata[MetadataKey.bestEpoch].flatMap { Int($0) },
            bestMeanJaccard: metadata[MetadataKey.bestMeanJaccard].flatMap { Double($0) },
            dataDescription: recordedData.isEmpty ? nil : recordedData)
    }

    private static func decode<T: Decodable>(_ type: T.Type, _ json: String) -> T? {
        try? JSONDecoder().decode(type, from: Data(json.utf8))
    }

    /// The model's tensors: everything but the optimizer state.
    public var modelTensors: [(name: String, shape: [Int])] {
        tensors.filter { !$0.name.hasPrefix(TrainingCheckpoint.optimizerPrefix) }
    }

    /// True when the file holds optimizer state (a training checkpoint that can be resumed exactly).
    public var hasOptimizerState: Bool {
        tensors.contains { $0.name.hasPrefix(TrainingCheckpoint.optimizerPrefix) }
    }

    /// The number of trainable weights in the file: the model's tensors without the batch-norm
    /// statistics (`running_mean`, `running_var`, `num_batches_tracked`), which are buffers.
    public var parameterCount: Int {
        modelTensors.filter { !$0.name.contains("running_") && !$0.name.hasSuffix("num_batches_tracked") }
            .reduce(0) { $0 + $1.shape.reduce(1, *) }
    }

    /// The number of completed epochs: `epoch`, else the length of `history`.
    public var completedEpochs: Int { epoch ?? history.count }

    /// The checkpoint file.
    public var url: URL { URL(fileURLWithPath: path).standardizedFileURL }

    /// The folder the checkpoint is in (a run folder for checkpoints written by `Trainer`).
    public var runFolder: URL { url.deletingLastPathComponent() }

    /// The data folder the run trained on, from `dataDescription`; nil when none is recorded. The
    /// folder may no longer exist.
    public var recordedDataFolder: URL? { dataDescription.map { URL(fileURLWithPath: $0) } }

    /// The validation slices recorded in the `config.json` next to the checkpoint (written by
    /// `Trainer`), as the range from the lowest to the highest; nil when that file is absent or
    /// holds no readable `validationSlices`.
    public var recordedValidationSlices: ClosedRange<Int>? {
        struct Recorded: Decodable { var validationSlices: [Int] }
        let file = runFolder.appendingPathComponent(Trainer.runConfigurationFileName)
        guard let data = try? Data(contentsOf: file),
              let recorded = try? JSONDecoder().decode(Recorded.self, from: data),
              let lo = recorded.validationSlices.min(), let hi = recorded.validationSlices.max() else { return nil }
        return lo...hi
    }

    /// The training settings, for resuming the run.
    ///
    /// - Throws: `UNetCheckpointError` when the metadata has no `unet.training` (the file can be used
    ///   for inference but not resumed), when it is unreadable, or when a value is out of range.
    public func resumableTrainingConfiguration() throws -> TrainingConfiguration {
        func fail(_ problem: UNetCheckpointError.Problem) -> UNetCheckpointError {
            UNetCheckpointError(path: path, problem: problem)
        }
        guard let json = metadata[MetadataKey.training] else { throw fail(.noTrainingConfiguration) }
        guard let training = training ?? Self.decode(TrainingConfiguration.self, json) else {
            throw fail(.unreadableMetadata(key: MetadataKey.training, expected: "a training configuration as JSON"))
        }
        do {
            try training.validate()
        } catch let error as TrainingConfigurationError {
            throw fail(.invalidTrainingConfiguration(error))
        }
        return training
    }

    /// Builds the model `model` describes and loads the file's weights into it, strictly (every tensor
    /// present, none extra, every shape right). The model is in training mode; call `eval()` for
    /// inference.
    ///
    /// - Parameter seed: seeds the model's initialization (overwritten by the weights) and its
    ///   dropout's random stream.
    /// - Throws: `UNetCheckpointError.Problem.weightsDoNotFit` when the weights are of another
    ///   architecture than the metadata says (`.tooFewWeights`, before the network is built, when the
    ///   file holds fewer weights than the architecture's bottleneck alone); `SafeTensorsError` when the tensor data cannot be read.
    public func makeModel(seed: UInt64 = 0) throws -> UNetModel {
        // The bottleneck's second convolution alone has 9 * F^2 weights (F: the deepest level's
        // filters). A file holding fewer cannot fit, and its header must not make us build (allocate)
        // a network of any size the configuration allows (base 256, depth 6: billions of weights).
        let deepest = model.filters(atLevel: model.depth)
        let needed = 9 * deepest * deepest
        let held = modelTensors.reduce(0) { $0 + $1.shape.reduce(1, *) }
        guard held >= needed else {
            throw UNetCheckpointError(path: path, problem: .tooFewWeights(model: model, held: held, needed: needed))
        }
        var rng = SeededGenerator(seed: seed)
        let network = UNetModel(configuration: model, generator: &rng)
        do {
            try TrainingCheckpoint.load(from: path, into: network, optimizer: nil, strict: true)
        } catch let error as CheckpointError {
            throw UNetCheckpointError(path: path, problem: .weightsDoNotFit(model: model, error.problem))
        }
        return network
    }
}

/// A file that is valid safetensors but not a usable swift-unet checkpoint: names the file and what
/// its metadata or weights lack.
public struct UNetCheckpointError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The checkpoint file.
    public let path: String
    /// What is wrong with it.
    public let problem: Problem

    /// Creates an error.
    public init(path: String, problem: Problem) {
        self.path = path
        self.problem = problem
    }

    /// The specific problem.
    public enum Problem: Equatable, Sendable {
        /// The metadata has no `unet.model` (a safetensors file from elsewhere, or a bare `Module.save`).
        case noModelConfiguration
        /// A metadata value cannot be decoded as what its key holds.
        case unreadableMetadata(key: String, expected: String)
        /// The model configuration has a value out of range.
        case invalidModelConfiguration(UNetConfigurationError)
        /// The metadata has no `unet.training`: the checkpoint cannot be resumed.
        case noTrainingConfiguration
        /// The training configuration has a value out of range.
        case invalidTrainingConfiguration(TrainingConfigurationError)
        /// The weights are not those of the architecture the metadata describes.
        case weightsDoNotFit(model: UNetConfiguration, CheckpointError.Problem)
        /// The file holds `held` model weights, fewer than the `needed` of the architecture's bottleneck
        /// convolution alone: it cannot hold the model its metadata describes.
        case tooFewWeights(model: UNetConfiguration, held: Int, needed: Int)
    }

    /// `"<path>: <problem>"`, one line.
    public var description: String {
        let message: String
        switch problem {
        case .noModelConfiguration:
            message = "not a swift-unet checkpoint (no '\(MetadataKey.model)' model configuration in its metadata)"
        case let .unreadableMetadata(key, expected):
            message = "unreadable '\(key)' in its metadata, expected \(expected)"
        case let .invalidModelConfiguration(error):
            message = error.description
        case .noTrainingConfiguration:
            message = "not a training checkpoint (no '\(MetadataKey.training)' in its metadata): it cannot be resumed"
        case let .invalidTrainingConfiguration(error):
            message = error.description
        case let .tooFewWeights(model, held, needed):
            message = "the weights do not fit the model its metadata describes (\(model.summary)): the file holds \(held) model weights, its bottleneck alone needs \(needed)"
        case let .weightsDoNotFit(model, mismatch):
            message = "the weights do not fit the model its metadata describes (\(model.summary)): \(mismatch.summary)"
        }
        return "\(path): \(message)"
    }
}
