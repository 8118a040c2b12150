/// An optimizer updates the parameters it was created with, in place, from their gradients.
///
/// Parameters are bound at creation with their dotted names (usually `model.namedParameters()`);
/// per-parameter state (momentum buffers, Adam moments, step counts) is keyed by those names, so it
/// can be saved to and restored from a checkpoint (`exportState()` / `importState(_:)`). Frozen
/// parameters (`isTrainable == false`) and parameters without a gradient are skipped, as in PyTorch.
///
/// ```swift
/// let optimizer = Adam(model, learningRate: 1e-3)
/// for batch in batches {
///     model.zeroGradients()
///     let loss = softmaxCrossEntropy(logits: model(batch.x), targets: batch.y)
///     loss.backward()
///     optimizer.step()
/// }
/// ```
public protocol Optimizer: AnyObject {
    /// Short lowercase name used in checkpoints ("sgd", "adam", "adamw").
    var kind: String { get }
    /// The step size; learning-rate schedules change it between epochs.
    var learningRate: Float { get set }
    /// The parameters this optimizer updates, by dotted name, in a fixed order.
    var parameters: [(String, Parameter)] { get }
    /// The hyper-parameters, as text, for a checkpoint's metadata (informational).
    var configuration: [String: String] { get }
    /// Applies one update to every trainable parameter that has a gradient.
    func step()
    /// A copy of the optimizer's state: tensors named `<slot>.<parameter name>` (for example
    /// `m.conv1.weight`) and scalars (`learning_rate`, `step.<parameter name>`).
    func exportState() -> OptimizerState
    /// Restores state produced by `exportState()` of an optimizer of the same kind over parameters of
    /// the same names and shapes. Throws (changing nothing) when names, shapes or slots do not match.
    func importState(_ state: OptimizerState) throws
}

extension Optimizer {
    /// Clears the gradients of all bound parameters.
    public func zeroGradients() { for (_, p) in parameters { p.zeroGradient() } }
}

/// An optimizer's state as named tensors and scalars: what checkpoints store.
public struct OptimizerState {
    /// Per-parameter buffers, named `<slot>.<parameter name>`.
    public var tensors: [(String, Tensor)]
    /// Scalars such as `learning_rate` and `step.<parameter name>`.
    public var scalars: [String: Double]

    /// Creates a state from its parts.
    public init(tensors: [(String, Tensor)] = [], scalars: [String: Double] = [:]) {
        self.tensors = tensors
        self.scalars = scalars
    }

    /// The tensor named `name`, if present.
    public func tensor(_ name: String) -> Tensor? { tensors.first { $0.0 == name }?.1 }
}

/// A problem with optimizer state being imported: names, shapes or kinds that do not match.
public struct OptimizerStateError: Error, CustomStringConvertible, Equatable {
    /// What is wrong.
    public let message: String
    /// Creates an error with a message.
    public init(_ message: String) { self.message = message }
    /// `"optimizer state: <message>"`.
    public var description: String { "optimizer state: \(message)" }
}

/// One state tensor of one parameter. A class, so that two slots of a parameter can be written at
/// once and a slot's storage stays uniquely referenced (no copy-on-write) across steps.
final class Slot {
    var tensor: Tensor
    init(_ tensor: Tensor) { self.tensor = tensor }
}

/// Shared bookkeeping for optimizers whose state is a few tensors per parameter.
struct SlotTable {
    let parameters: [(String, Parameter)]
    let slotNames: [String]
    /// `buffers[i]` holds parameter i's slots (in `slotNames` order), nil until its first step.
    var buffers: [[Slot]?]
    var steps: [Int]

    init(parameters: [(String, Parameter)], slotNames: [String]) {
        var seen = Set<String>()
        for (name, _) in parameters {
            precondition(seen.insert(name).inserted, "Optimizer: parameter name '\(name)' appears twice")
        }
        self.parameters = parameters
        self.slotNames = slotNames
        buffers = Array(repeating: nil, count: parameters.count)
        steps = Array(repeating: 0, count: parameters.count)
    }

    func export(learningRate: Float, includeSteps: Bool) -> OptimizerState {
        var state = OptimizerState(scalars: ["learning_rate": Double(learningRate)])
        for (i, (name, _)) in parameters.enumerated() {
            guard let slots = buffers[i] else { continue }
            for (slot, tensor) in zip(slotNames, slots) { state.tensors.append(("\(slot).\(name)", tensor.tensor)) }
            if includeSteps { state.scalars["step.\(name)"] = Double(steps[i]) }
        }
        return state
    }

    /// Validates `state` completely, then replaces the table's contents; returns the learning rate if present.
    mutating func importing(_ state: OptimizerState, includeSteps: Bool) throws -> Float? {
        var index: [String: Int] = [:]
        for (i, (name, _)) in parameters.enumerated() { index[name] = i }
        var newBuffers = [[Tensor?]?](repeating: nil, count: parameters.count)
        for (key, tensor) in state.tensors {
            guard let (slotIndex, name) = splitKey(key), let i = index[name] else {
                throw OptimizerStateError("tensor '\(key)' names no slot (\(slotNames.joined(separator: ", "))) of a known parameter")
            }
            let shape = parameters[i].1.shape
            guard tensor.shape == shape else {
                throw OptimizerStateError("tensor '\(key)' has shape \(tensor.shape), parameter '\(name)' has \(shape)")
            }
            var slots = newBuffers[i] ?? Array(repeating: nil, count: slotNames.count)
            guard slots[slotIndex] == nil else { throw OptimizerStateError("tensor '\(key)' appears twice") }
            slots[slotIndex] = tensor.detached
            newBuffers[i] = slots
        }
        var newSteps = [Int](repeating: 0, count: parameters.count)
        for (i, (name, _)) in parameters.enumerated() {
            let stepValue = state.scalars["step.\(name)"]
            if let slots = newBuffers[i] {
                if let missing = zip(slotNames, slots).first(where: { $0.1 == nil }) {
                    throw OptimizerStateError("parameter '\(name)' has state but no '\(missing.0).\(name)' tensor")
                }
                if includeSteps {
                    guard let s = stepValue, s >= 1, s < 9.0e15, s == s.rounded() else {
                        throw OptimizerStateError("parameter '\(name)' has no valid 'step.\(name)' (got \(stepValue.map { "\($0)" } ?? "nothing"))")
                    }
                    newSteps[i] = Int(s)
                }
            } else if stepValue != nil {
                throw OptimizerStateError("'step.\(name)' given without the tensors of parameter '\(name)'")
            }
        }
        let knownScalars = Set(parameters.map { "step.\($0.0)" } + ["learning_rate"])
        if let unknown = state.scalars.keys.sorted().first(where: { !knownScalars.contains($0) || (!includeSteps && $0.hasPrefix("step.")) }) {
            throw OptimizerStateError("unknown scalar '\(unknown)'")
        }
        var learningRate: Float?
        if let lr = state.scalars["learning_rate"] {
            guard lr.isFinite, lr >= 0 else { throw OptimizerStateError("learning_rate \(lr) is not a finite non-negative number") }
            learningRate = Float(lr)
        }
        buffers = newBuffers.map { $0?.map { Slot($0!) } }
        steps = newSteps
        return learningRate
    }

    /// The walk every optimizer's `step()` makes: calls `body` with the index, the parameter and its
    /// gradient for each trainable parameter that has a gradient, in `parameters` order, timed as the
    /// profiler's "optimizer" category. A gradient of another shape than its parameter is a programming
    /// error, reported with `optimizer`'s name and the parameter's.
    ///
    /// Static, over a copy of the parameter list, so that `body` may change the optimizer's table.
    static func forEachGradient(of parameters: [(String, Parameter)], optimizer: String,
                                _ body: (_ index: Int, _ parameter: Parameter, _ gradient: Tensor) -> Void) {
        OpProfiler.measure("optimizer") {
            for (i, (name, parameter)) in parameters.enumerated() {
                guard parameter.isTrainable, let gradient = parameter.gradient else { continue }
                precondition(gradient.shape == parameter.shape,
                             "\(optimizer): gradient shape \(gradient.shape) of '\(name)' differs from \(parameter.shape)")
                body(i, parameter, gradient)
            }
        }
    }

    private func splitKey(_ key: String) -> (Int, String)? {
        for (i, slot) in slotNames.enumerated() where key.hasPrefix(slot + ".") {
            return (i, String(key.dropFirst(slot.count + 1)))
        }
        return nil
    }
}
