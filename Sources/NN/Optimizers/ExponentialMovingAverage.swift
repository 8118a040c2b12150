import Tensor

/// An exponential moving average (EMA) of a module's state, updated after every optimizer step:
/// `average = d * average + (1 - d) * value` for every parameter and buffer.
///
/// The decay of the k-th update (k = 1, 2, ...) is `min(decay, (1 + k) / (10 + k))`, as in
/// TensorFlow's `ExponentialMovingAverage(num_updates:)`: the average follows the weights closely
/// during the first steps (when they move fast, away from the random initialization) and settles to
/// `decay` later. Without this warm-up a decay of 0.999 would keep a trace of the random weights for
/// thousands of steps, longer than a short CPU run.
///
/// Buffers are averaged like parameters (batch norm's `running_mean` and `running_var` then match
/// the averaged weights roughly as the raw statistics match the raw weights), except counters named
/// `num_batches_tracked`, which are copied.
///
/// ```swift
/// let ema = ExponentialMovingAverage(module: model, decay: 0.999)
/// for batch in batches {
///     train(batch); optimizer.step()
///     ema.update()
/// }
/// try ema.withAveragedWeights { validate(model) }   // the model holds the averages inside the closure
/// ```
public final class ExponentialMovingAverage {
    /// The module whose state is averaged.
    public let module: Module
    /// The decay the average settles to, in [0, 1).
    public let decay: Float
    /// The number of `update()` calls so far (restored from checkpoints).
    public private(set) var updates: Int = 0
    /// Dotted names, in `module.stateDictionary()` order (parameters, then buffers).
    public let names: [String]
    private let shapes: [[Int]]
    private var averages: [[Float]]
    private let copied: [Bool]

    /// Starts the average at the module's current state.
    public init(module: Module, decay: Float) {
        precondition(decay >= 0 && decay < 1, "ExponentialMovingAverage: decay \(decay) must be in [0, 1)")
        self.module = module
        self.decay = decay
        let state = module.stateDictionary()
        names = state.map(\.0)
        shapes = state.map(\.1.shape)
        averages = state.map(\.1.scalars)
        copied = names.map { $0 == "num_batches_tracked" || $0.hasSuffix(".num_batches_tracked") }
    }

    /// The decay the next `update()` uses.
    public var nextDecay: Float {
        let k = Float(updates + 1)
        return min(decay, (1 + k) / (10 + k))
    }

    /// Folds the module's current parameters and buffers into the average.
    public func update() {
        let d = nextDecay
        updates += 1
        let current = currentTensors()
        for i in averages.indices {
            let copy = copied[i]
            current[i].withUnsafeBufferPointer { src in
                averages[i].withUnsafeMutableBufferPointer { avg in
                    if copy {
                        for j in 0..<avg.count { avg[j] = src[j] }
                    } else {
                        let a = 1 - d
                        for j in 0..<avg.count { avg[j] = d * avg[j] + a * src[j] }
                    }
                }
            }
        }
    }

    /// The averaged state by dotted name, in `module.stateDictionary()` order.
    public func averagedState() -> [(String, Tensor)] {
        zip(names, zip(shapes, averages)).map { ($0, Tensor(shape: $1.0, scalars: $1.1)) }
    }

    /// Replaces the average and the update count (from a checkpoint). Throws `OptimizerStateError`,
    /// changing nothing, unless `state` holds exactly the module's names with the right shapes.
    public func restore(_ state: [(String, Tensor)], updates: Int) throws {
        guard updates >= 0 else { throw OptimizerStateError("EMA update count \(updates) is negative") }
        let given = Dictionary(state, uniquingKeysWith: { a, _ in a })
        guard given.count == state.count else { throw OptimizerStateError("EMA state names a tensor twice") }
        var restored: [[Float]] = []
        for (i, name) in names.enumerated() {
            guard let tensor = given[name] else { throw OptimizerStateError("EMA state lacks '\(name)'") }
            guard tensor.shape == shapes[i] else {
                throw OptimizerStateError("EMA state '\(name)' has shape \(tensor.shape), the module \(shapes[i])")
            }
            restored.append(tensor.scalars)
        }
        if let extra = state.first(where: { !names.contains($0.0) }) {
            throw OptimizerStateError("EMA state has '\(extra.0)', which the module lacks")
        }
        averages = restored
        self.updates = updates
    }

    /// Runs `body` with the averaged state in the module, then puts the module's own state back
    /// (also when `body` throws).
    public func withAveragedWeights<R>(_ body: () throws -> R) rethrows -> R {
        let own = module.stateDictionary()
        assign(averagedState())
        defer { assign(own) }
        return try body()
    }

    private func currentTensors() -> [Tensor] {
        module.namedParameters().map(\.1.value) + module.namedBuffers().map(\.1.value)
    }

    private func assign(_ state: [(String, Tensor)]) {
        let parameters = module.namedParameters(), buffers = module.namedBuffers()
        for (i, (_, parameter)) in parameters.enumerated() { parameter.assign(state[i].1) }
        for (i, (_, buffer)) in buffers.enumerated() { buffer.assign(state[parameters.count + i].1) }
    }
}
