import Foundation
import UNet

/// The checkpoints named by one or more `--model` flags: one model, or an ensemble whose class
/// probabilities `Segmenter` averages.
struct ModelFlags {
    /// The paths, in the order given.
    let paths: [String]
    /// Each path's header.
    let checkpoints: [CheckpointSummary]

    /// Reads every checkpoint's header and checks that the models can be averaged: the same input
    /// (context slices) and classes as the first. A folder stands for its checkpoints
    /// (`checkpoints(named:)`).
    init(paths given: [String]) throws {
        precondition(!given.isEmpty, "ModelFlags: no --model")
        let paths = try given.flatMap(Self.checkpoints(named:))
        self.paths = paths
        checkpoints = try paths.map { try loadCheckpoint($0, flag: "--model") }
        for (path, checkpoint) in zip(paths, checkpoints).dropFirst() {
            if let mismatch = Segmenter.ensembleMismatch(checkpoint.model, joining: checkpoints[0].model) {
                throw CLIError(.dataError, "--model \(path) \(mismatch) \(paths[0]): the models of an ensemble must take the same input and give the same classes")
            }
        }
    }

    /// The checkpoints one `--model` names: a file itself; the folder of an ensemble
    /// (`ensemble.json`), every member's best.safetensors; a run folder, its best.safetensors.
    static func checkpoints(named path: String) throws -> [String] {
        let url = fileURL(path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else { return [path] }
        if EnsembleManifest.exists(in: url) {
            let manifest = try loadEnsembleManifest(url, flag: "--model")
            let best = manifest.bestCheckpoints(in: url)
            if let (name, missing) = zip(manifest.members, best).first(where: { !FileManager.default.fileExists(atPath: $0.1.path) }) {
                throw CLIError(.noInput, "--model \(path): member \(name) has no \(missing.lastPathComponent) yet (no epoch of its training finished)")
            }
            return best.map(\.path)
        }
        let best = url.appendingPathComponent(Trainer.bestCheckpointFileName)
        guard FileManager.default.fileExists(atPath: best.path) else {
            throw CLIError(.noInput, "--model \(path): a folder without \(EnsembleManifest.fileName) or \(Trainer.bestCheckpointFileName); expected a checkpoint, a run folder or an ensemble's folder")
        }
        return [best.path]
    }

    /// The first model's checkpoint (the only one without an ensemble).
    var first: CheckpointSummary { checkpoints[0] }
    /// True for an ensemble of several models.
    var isEnsemble: Bool { checkpoints.count > 1 }

    /// The networks with their weights.
    func makeModels() throws -> [UNetModel] { try checkpoints.map { try $0.makeModel() } }

    /// The architecture, or "an ensemble of K models, each ..." (or every model's, when they differ).
    var summary: String {
        guard isEnsemble else { return first.model.summary }
        let distinct = Set(checkpoints.map(\.model.summary))
        return "an ensemble of \(checkpoints.count) models, " + (distinct.count == 1 ? "each \(first.model.summary)"
            : checkpoints.map(\.model.summary).joined(separator: "; "))
    }

    /// Whether `--tta` aligns the transformed predictions: when any model was trained without
    /// flips. The alignment then applies to every model; one trained with flips has no offset to
    /// undo, so its shifts should come out near zero. Prints the note on the leader.
    func alignsTestTimeAugmentation(_ tta: Bool, printNote: Bool) -> Bool {
        guard tta else { return false }
        let unflipped = zip(paths, checkpoints).filter { trainedWithoutFlips($0.1) }.map(\.0)
        if printNote { for path in unflipped { printError(alignedTestTimeAugmentationNote(path: path)) } }
        return !unflipped.isEmpty
    }
}
