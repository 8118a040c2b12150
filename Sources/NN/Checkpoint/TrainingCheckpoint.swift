/// A training checkpoint: a model's state, optionally an optimizer's state, and free-form metadata
/// (epoch, configuration, ...) in one safetensors file, written atomically.
///
/// Layout (see docs/CHECKPOINTS.md):
/// - model tensors under their dotted names (`down1.conv1.weight`), exactly as `Module.save(to:)`;
/// - optimizer tensors as `optimizer.<kind>.<slot>.<parameter name>`, e.g. `optimizer.adam.m.conv.weight`;
/// - metadata `optimizer.kind` = `adam`, optimizer scalars as `optimizer.<kind>.<scalar>`
///   (`optimizer.adam.learning_rate`, `optimizer.adam.step.conv.weight`), hyper-parameters as
///   `optimizer.<kind>.config.<name>`, and the caller's keys unchanged (none may start with `optimizer.`);
/// - with an exponential moving average (EMA) of the weights: the averaged state under the model's
///   own names (what inference and PyTorch load), the raw training state as
///   `optimizer.ema.raw.<name>`, and metadata `optimizer.ema.decay` and `optimizer.ema.updates`.
///   Everything needed only to resume training stays under the `optimizer.` prefix.
public enum TrainingCheckpoint {
    /// The prefix reserved for optimizer tensors and metadata.
    public static let optimizerPrefix = "optimizer."
    /// The prefix of the EMA's entries: `raw.<name>` tensors (the weights being trained) and the
    /// `decay` and `updates` metadata.
    public static let emaPrefix = "optimizer.ema."

    /// What `load` restored.
    public struct LoadResult {
        /// How the model's tensors matched.
        public var report: StateLoadReport
        /// The caller's metadata (optimizer keys removed).
        public var metadata: [String: String]
        /// True when optimizer state was found and imported.
        public var restoredOptimizer: Bool
        /// True when an EMA was given and its state (and the raw weights) were restored.
        public var restoredEMA: Bool = false
    }

    /// Writes `model` (and `optimizer`'s state) with `metadata` to `path`, atomically.
    ///
    /// With `ema` (an average of `model`), the model's names hold the averaged state and the model's
    /// own state goes to `optimizer.ema.raw.<name>`.
    public static func save(model: Module, optimizer: Optimizer? = nil, ema: ExponentialMovingAverage? = nil,
                            metadata: [String: String] = [:], to path: String) throws {
        if let key = metadata.keys.sorted().first(where: { $0.hasPrefix(optimizerPrefix) }) {
            throw CheckpointError(path: path, problem: .invalidMetadata("metadata key '\(key)' uses the reserved prefix '\(optimizerPrefix)'"))
        }
        var header = metadata
        if header["format"] == nil { header["format"] = "pt" }
        var tensors = model.stateDictionary().map { (name: $0.0, tensor: $0.1) }
        if let ema {
            precondition(ema.module === model, "TrainingCheckpoint.save: the EMA averages another module")
            let raw = tensors.map { (name: emaPrefix + "raw." + $0.name, tensor: $0.tensor) }
            tensors = ema.averagedState().map { (name: $0.0, tensor: $0.1) } + raw
            header[emaPrefix + "decay"] = "\(ema.decay)"
            header[emaPrefix + "updates"] = String(ema.updates)
        }
        if let optimizer {
            let kind = optimizer.kind
            let prefix = optimizerPrefix + kind + "."
            let state = optimizer.exportState()
            header[optimizerPrefix + "kind"] = kind
            for (key, value) in state.scalars { header[prefix + key] = "\(value)" }
            for (key, value) in optimizer.configuration { header[prefix + "config." + key] = value }
            tensors += state.tensors.map { (name: prefix + $0.0, tensor: $0.1) }
        }
        try SafeTensors(tensors: tensors, metadata: header).write(to: path)
    }

    /// Reads `path`, loads the model (strict or not, as `Module.loadState`) and, when `optimizer` is
    /// given, its state. Strict loading also requires optimizer state in the file when an optimizer is
    /// given; a file holding another kind's state always throws. Nothing is changed when it throws.
    ///
    /// Without `ema`, the model receives the tensors under its own names: for a file written with an
    /// EMA, the averaged weights. With `ema` (an average of `model`), the file must hold EMA state:
    /// the model receives the raw weights (`optimizer.ema.raw.`) and `ema` the averages and the
    /// update count, so that training continues exactly.
    @discardableResult
    public static func load(from path: String, into model: Module, optimizer: Optimizer? = nil,
                            ema: ExponentialMovingAverage? = nil, strict: Bool = true) throws -> LoadResult {
        let file = try SafeTensors.read(from: path)
        var modelTensors = file.tensors.filter { !$0.name.hasPrefix(optimizerPrefix) }.map { ($0.name, $0.tensor) }
        let metadata = file.metadata.filter { !$0.key.hasPrefix(optimizerPrefix) }
        let rawPrefix = emaPrefix + "raw."
        var averaged: [(String, Tensor)]? = nil
        var emaUpdates = 0
        if let ema {
            precondition(ema.module === model, "TrainingCheckpoint.load: the EMA averages another module")
            guard let updatesText = file.metadata[emaPrefix + "updates"] else {
                throw CheckpointError(path: path, problem: .optimizerState("checkpoint holds no EMA state ('\(emaPrefix)updates'): it was not trained with an EMA of the weights"))
            }
            guard let updates = Int(updatesText), updates >= 0 else {
                throw CheckpointError(path: path, problem: .invalidMetadata("'\(emaPrefix)updates' = '\(updatesText)' is not a count"))
            }
            emaUpdates = updates
            averaged = modelTensors
            modelTensors = file.tensors.filter { $0.name.hasPrefix(rawPrefix) }
                .map { (String($0.name.dropFirst(rawPrefix.count)), $0.tensor) }
        }

        // Prepare the optimizer state fully before changing anything.
        var optimizerState: OptimizerState?
        if let optimizer {
            if let kind = file.metadata[optimizerPrefix + "kind"] {
                guard kind == optimizer.kind else {
                    throw CheckpointError(path: path, problem: .optimizerState(
                        "checkpoint holds '\(kind)' optimizer state, the optimizer is '\(optimizer.kind)'"))
                }
                let prefix = optimizerPrefix + kind + "."
                var state = OptimizerState()
                for (name, tensor) in file.tensors where name.hasPrefix(prefix) {
                    state.tensors.append((String(name.dropFirst(prefix.count)), tensor))
                }
                for (key, value) in file.metadata where key.hasPrefix(prefix) && !key.hasPrefix(prefix + "config.") {
                    guard let number = Double(value) else {
                        throw CheckpointError(path: path, problem: .invalidMetadata("'\(key)' = '\(value)' is not a number"))
                    }
                    state.scalars[String(key.dropFirst(prefix.count))] = number
                }
                if let stray = file.tensors.first(where: { $0.name.hasPrefix(optimizerPrefix) && !$0.name.hasPrefix(prefix)
                                                           && !$0.name.hasPrefix(rawPrefix) }) {
                    throw CheckpointError(path: path, problem: .optimizerState("tensor '\(stray.name)' is not '\(kind)' state"))
                }
                optimizerState = state
            } else if strict {
                throw CheckpointError(path: path, problem: .optimizerState("checkpoint holds no optimizer state"))
            }
        }

        // A dry run validates the model match and the optimizer state before anything is assigned.
        let report = try model.loadStateReport(modelTensors, strict: strict, source: path)
        if ema != nil, let averaged {
            // Both the averages and the raw weights must match the model exactly (dry runs).
            _ = try model.loadStateReport(averaged, strict: true, source: path)
            _ = try model.loadStateReport(modelTensors, strict: true, source: path)
        }
        if let optimizerState, let optimizer {
            do {
                try optimizer.importState(optimizerState)
            } catch let error as OptimizerStateError {
                throw CheckpointError(path: path, problem: .optimizerState(error.message))
            }
        }
        if let ema, let averaged {
            // Validated above (names and shapes), so this cannot throw.
            try? ema.restore(averaged, updates: emaUpdates)
        }
        try model.loadState(modelTensors, strict: strict, source: path)
        return LoadResult(report: report, metadata: metadata, restoredOptimizer: optimizerState != nil,
                          restoredEMA: averaged != nil)
    }
}
