import ArgumentParser
import Benchmarking
import Foundation
import NN
import UNet

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a checkpoint's configuration, parameter count, epoch and metrics.",
        discussion: """
            Reads only the checkpoint's header (fast, even for large files).

            \(ExitStatus.helpTable)
            """)

    @Argument(help: ArgumentHelp("A .safetensors checkpoint.", valueName: "ckpt"))
    var checkpoint: String

    @Flag(help: "Print one JSON object.")
    var json = false

    struct Output: Encodable {
        var path: String
        var model: UNetConfiguration
        var training: TrainingConfiguration?
        var parameters: Int
        var epoch: Int?
        var bestEpoch: Int?
        var bestMeanJaccard: Double?
        var data: String?
        var history: [EpochRecord]
        var tensors: Int
        var hasOptimizerState: Bool
        var threshold: Float?

        enum CodingKeys: String, CodingKey {
            case path, model, training, parameters, epoch, bestEpoch = "best_epoch", bestMeanJaccard = "best_mean_jaccard"
            case data, history, tensors, hasOptimizerState = "has_optimizer_state", threshold
        }
    }

    func run() throws {
        let summary = try loadCheckpoint(checkpoint, flag: "checkpoint")
        let output = Output(
            path: checkpoint, model: summary.model, training: summary.training, parameters: summary.parameterCount,
            epoch: summary.epoch, bestEpoch: summary.bestEpoch, bestMeanJaccard: summary.bestMeanJaccard,
            data: summary.metadata[MetadataKey.data], history: summary.history,
            tensors: summary.modelTensors.count, hasOptimizerState: summary.hasOptimizerState,
            threshold: summary.storedThreshold)
        if json {
            print(jsonString(output))
            return
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: checkpoint)[.size] as? Int) ?? 0
        print("Checkpoint: \(checkpoint) (\(String(format: "%.1f", Double(size) / 1_048_576)) MiB, \(output.tensors) tensors\(output.hasOptimizerState ? " + optimizer state" : ""))")
        print("Model: \(summary.model.summary)")
        print("Parameters: \(output.parameters)")
        if let t = summary.training {
            print("Training: \(t.epochs) epochs planned, batch \(t.batchSize), tile \(t.tileSize), \(t.optimizer.rawValue) lr \(t.learningRate), loss \(t.loss.rawValue), weight decay \(t.weightDecay), augmentation \(t.augment ? "on" : "off"), patience \(t.patience), seed \(t.seed)")
            print("Recipe: \(recipeDescription(t))")
        }
        if let threshold = summary.storedThreshold {
            print("Instance threshold: \(threshold) (\(summary.metadata[MetadataKey.thresholdSource] ?? "source not recorded"))")
        }
        if let data = output.data, !data.isEmpty { print("Data: \(data)") }
        print("Epoch: \(output.epoch.map(String.init) ?? "unknown")\(summary.training.map { " of \($0.epochs)" } ?? "")")
        if let best = output.bestEpoch, let jaccard = output.bestMeanJaccard {
            print(String(format: "Best: epoch %d, mean validation Jaccard %.6f", best, jaccard))
        }
        if let last = summary.history.last {
            print("Last epoch: \(last.tutorialLine)")
        }
    }
}
