import UNet

/// The checkpoints named by one or more `--model` flags: one model, or an ensemble whose class
/// probabilities `Segmenter` averages.
struct ModelFlags {
    /// The paths, in the order given.
    let paths: [String]
    /// Each path's header.
    let checkpoints: [CheckpointSummary]

    /// Reads every checkpoint's header and checks that the models can be averaged: the same input
    /// (context slices) and classes as the first.
    init(paths: [String]) throws {
        precondition(!paths.isEmpty, "ModelFlags: no --model")
        self.paths = paths
        checkpoints = try paths.map { try loadCheckpoint($0, flag: "--model") }
        for (path, checkpoint) in zip(paths, checkpoints).dropFirst() {
            if let mismatch = Segmenter.ensembleMismatch(checkpoint.model, joining: checkpoints[0].model) {
                throw CLIError(.dataError, "--model \(path) \(mismatch) \(paths[0]): the models of an ensemble must take the same input and give the same classes")
            }
        }
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
