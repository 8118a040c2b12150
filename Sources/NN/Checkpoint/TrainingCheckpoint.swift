/// A training checkpoint: a model's state, optionally an optimizer's state, and free-form metadata
/// (epoch, configuration, ...) in one safetensors file, written atomically.
///
/// Layout (see docs/CHECKPOINTS.md):
/// - model tensors under their dotted names (`down1.conv1.weight`), exactly as `Module.save(to:)`;
/// - optimizer tensors as `optimizer.<kind>.<slot>.<parameter name>`, e.g. `optimizer.adam.m.conv.weight`;
/// - metadata `optimizer.kind` = `adam`, optimizer scalars as `optimizer.<kind>.<scalar>`
///   (`optimizer.adam.learning_rate`, `optimizer.adam.step.conv.weight`), hyper-parameters as
///   `optimizer.<kind>.config.<name>`, and the caller's keys unchanged (none may start with `optimizer.`).
public enum TrainingCheckpoint {
    /// The prefix reserved for optimizer tensors and metadata.
    public static let optimizerPrefix = "optimizer."

    /// What `load` restored.
    public struct LoadResult {
        /// How the model's tensors matched.
        public var report: StateLoadReport
        /// The caller's metadata (optimizer keys removed).
        public var metadata: [String: String]
        /// True when optimizer state was found and imported.
        public var restoredOptimizer: Bool
    }

    /// Writes `model` (and `optimizer`'s state) with `metadata` to `path`, atomically.
    public static func save(model: Module, optimizer: Optimizer? = nil, metadata: [String: String] = [:],
                            to path: String) throws {
        if let key = metadata.keys.sorted().first(where: { $0.hasPrefix(optimizerPrefix) }) {
            throw CheckpointError(path: path, problem: .invalidMetadata("metadata key '\(key)' uses the reserved prefix '\(optimizerPrefix)'"))
        }
        var header = metadata
        if header["format"] == nil { header["format"] = "pt" }
        var tensors = model.stateDictionary().map { (name: $0.0, tensor: $0.1) }
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
    @discardableResult
    public static func load(from path: String, into model: Module, optimizer: Optimizer? = nil,
                            strict: Bool = true) throws -> LoadResult {
        let file = try SafeTensors.read(from: path)
        let modelTensors = file.tensors.filter { !$0.name.hasPrefix(optimizerPrefix) }.map { ($0.name, $0.tensor) }
        let metadata = file.metadata.filter { !$0.key.hasPrefix(optimizerPrefix) }

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
                if let stray = file.tensors.first(where: { $0.name.hasPrefix(optimizerPrefix) && !$0.name.hasPrefix(prefix) }) {
                    throw CheckpointError(path: path, problem: .optimizerState("tensor '\(stray.name)' is not '\(kind)' state"))
                }
                optimizerState = state
            } else if strict {
                throw CheckpointError(path: path, problem: .optimizerState("checkpoint holds no optimizer state"))
            }
        }

        // A dry run validates the model match and the optimizer state before anything is assigned.
        let report = try model.loadStateReport(modelTensors, strict: strict, source: path)
        if let optimizerState, let optimizer {
            do {
                try optimizer.importState(optimizerState)
            } catch let error as OptimizerStateError {
                throw CheckpointError(path: path, problem: .optimizerState(error.message))
            }
        }
        try model.loadState(modelTensors, strict: strict, source: path)
        return LoadResult(report: report, metadata: metadata, restoredOptimizer: optimizerState != nil)
    }
}
