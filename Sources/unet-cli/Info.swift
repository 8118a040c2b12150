import ArgumentParser
import Benchmarking
import Foundation
import NN
import UNet

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a checkpoint's configuration, parameter count, epoch and metrics (or an ensemble's members).",
        discussion: """
            Reads only the checkpoint's header (fast, even for large files).

            \(ExitStatus.helpTable)
            """)

    @Argument(help: ArgumentHelp("A .safetensors checkpoint, a run folder (its last.safetensors), or the folder of an ensemble (`unet train --members`: every member, and the ensemble's saved score).", valueName: "ckpt"))
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

    /// `--json` for the folder of an ensemble.
    struct EnsembleOutput: Encodable {
        var path: String
        var members: [Output]
        var evaluation: EvaluationResult?
    }

    func run() throws {
        let url = fileURL(checkpoint)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return try show(checkpoint)
        }
        if !EnsembleManifest.exists(in: url) {
            let last = url.appendingPathComponent(Trainer.lastCheckpointFileName)
            guard FileManager.default.fileExists(atPath: last.path) else {
                throw CLIError(.noInput, "checkpoint \(checkpoint): a folder without \(Trainer.lastCheckpointFileName) or \(EnsembleManifest.fileName); expected a checkpoint, a run folder or an ensemble's folder")
            }
            return try show(last.path)
        }
        try showEnsemble(url)
    }

    /// The members of the ensemble in `folder`, each from its last checkpoint, and the saved score.
    func showEnsemble(_ folder: URL) throws {
        let manifest = try loadEnsembleManifest(folder, flag: "checkpoint")
        var members: [Output] = []
        for member in manifest.memberFolders(in: folder) {
            let last = member.appendingPathComponent(Trainer.lastCheckpointFileName)
            guard FileManager.default.fileExists(atPath: last.path) else {
                throw CLIError(.noInput, "checkpoint \(folder.path): member \(member.lastPathComponent) has no \(Trainer.lastCheckpointFileName) yet (no epoch of its training finished)")
            }
            members.append(output(last.path, try loadCheckpoint(last.path, flag: "checkpoint")))
        }
        let saved = folder.appendingPathComponent("evaluation.json")
        let evaluation = FileManager.default.contents(atPath: saved.path).flatMap { try? JSONDecoder().decode(EvaluationResult.self, from: $0) }
        if json {
            print(jsonString(EnsembleOutput(path: folder.path, members: members, evaluation: evaluation)))
            return
        }
        print("Ensemble: \(folder.path), \(members.count) members")
        for (name, member) in zip(manifest.members, members) {
            let best = member.bestEpoch.flatMap { epoch in member.bestMeanJaccard.map { String(format: ", best epoch %d (mean validation Jaccard %.6f)", epoch, $0) } } ?? ""
            print("\(name): \(member.model.summary); epoch \(member.epoch.map(String.init) ?? "unknown")\(member.training.map { " of \($0.epochs)" } ?? "")\(best)")
        }
        if let evaluation {
            print(String(format: "Ensemble score (%@): mean Jaccard %.6f, V_rand %@", saved.path, evaluation.meanJaccard,
                         evaluation.vRand.map { String(format: "%.6f", $0) } ?? "-"))
        }
    }

    func output(_ path: String, _ summary: CheckpointSummary) -> Output {
        Output(path: path, model: summary.model, training: summary.training, parameters: summary.parameterCount,
               epoch: summary.epoch, bestEpoch: summary.bestEpoch, bestMeanJaccard: summary.bestMeanJaccard,
               data: summary.metadata[MetadataKey.data], history: summary.history,
               tensors: summary.modelTensors.count, hasOptimizerState: summary.hasOptimizerState,
               threshold: summary.storedThreshold)
    }

    func show(_ checkpoint: String) throws {
        let summary = try loadCheckpoint(checkpoint, flag: "checkpoint")
        let output = output(checkpoint, summary)
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
