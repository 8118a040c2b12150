/// Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay,
/// computing exactly what PyTorch's `torch.optim.SGD` computes:
///
/// ```
/// g = grad + weightDecay * p
/// b = g                                        (first step)
/// b = momentum * b + (1 - dampening) * g       (later steps)
/// g = nesterov ? g + momentum * b : b          (when momentum != 0)
/// p = p - learningRate * g
/// ```
///
/// State: one `momentum_buffer.<name>` tensor per parameter once it has taken a step with momentum.
public final class SGD: Optimizer {
    /// "sgd".
    public let kind = "sgd"
    /// The step size.
    public var learningRate: Float
    /// Momentum factor (0 disables the buffer).
    public let momentum: Float
    /// Dampening of the gradient added to the momentum buffer.
    public let dampening: Float
    /// L2 penalty coefficient added to the gradient.
    public let weightDecay: Float
    /// Nesterov momentum (needs `momentum > 0` and `dampening == 0`).
    public let nesterov: Bool
    /// The parameters this optimizer updates, by dotted name.
    public var parameters: [(String, Parameter)] { table.parameters }
    private var table: SlotTable

    /// An SGD optimizer over named parameters.
    public init(parameters: [(String, Parameter)], learningRate: Float, momentum: Float = 0,
                dampening: Float = 0, weightDecay: Float = 0, nesterov: Bool = false) {
        precondition(learningRate >= 0 && momentum >= 0 && weightDecay >= 0,
                     "SGD: learningRate \(learningRate), momentum \(momentum), weightDecay \(weightDecay) must be >= 0")
        precondition(!nesterov || (momentum > 0 && dampening == 0),
                     "SGD: Nesterov momentum requires momentum > 0 and zero dampening")
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        table = SlotTable(parameters: parameters, slotNames: ["momentum_buffer"])
    }

    /// An SGD optimizer over all parameters of `module`.
    public convenience init(_ module: Module, learningRate: Float, momentum: Float = 0, dampening: Float = 0,
                            weightDecay: Float = 0, nesterov: Bool = false) {
        self.init(parameters: module.namedParameters(), learningRate: learningRate, momentum: momentum,
                  dampening: dampening, weightDecay: weightDecay, nesterov: nesterov)
    }

    /// The hyper-parameters as text: learning rate, momentum, dampening, weight decay, Nesterov.
    public var configuration: [String: String] {
        ["learning_rate": "\(learningRate)", "momentum": "\(momentum)", "dampening": "\(dampening)",
         "weight_decay": "\(weightDecay)", "nesterov": "\(nesterov)"]
    }

    /// One SGD update of every trainable parameter that has a gradient.
    public func step() {
        SlotTable.forEachGradient(of: table.parameters, optimizer: "SGD") { i, parameter, gradient in
            let count = parameter.value.count
            if momentum == 0 {
                gradient.withUnsafeBufferPointer { g in
                    parameter.value.withUnsafeMutableBufferPointer { p in
                        UpdateKernels.sgd(parameter: p.baseAddress!, gradient: g.baseAddress!, momentumBuffer: nil,
                                          count: count, firstStep: true, learningRate: learningRate, momentum: 0,
                                          dampening: dampening, weightDecay: weightDecay, nesterov: false)
                    }
                }
                return
            }
            let firstStep = table.buffers[i] == nil
            if firstStep { table.buffers[i] = [Slot(Tensor(uninitializedShape: parameter.shape))] }
            let buffer = table.buffers[i]![0]
            gradient.withUnsafeBufferPointer { g in
                parameter.value.withUnsafeMutableBufferPointer { p in
                    buffer.tensor.withUnsafeMutableBufferPointer { b in
                        UpdateKernels.sgd(parameter: p.baseAddress!, gradient: g.baseAddress!, momentumBuffer: b.baseAddress!,
                                          count: count, firstStep: firstStep, learningRate: learningRate,
                                          momentum: momentum, dampening: dampening, weightDecay: weightDecay,
                                          nesterov: nesterov)
                    }
                }
            }
            table.steps[i] += 1
        }
    }

    /// The `momentum_buffer.<name>` tensors and the learning rate.
    public func exportState() -> OptimizerState { table.export(learningRate: learningRate, includeSteps: false) }

    /// Restores state from `exportState()`; throws, changing nothing, when it does not fit.
    public func importState(_ state: OptimizerState) throws {
        if let lr = try table.importing(state, includeSteps: false) { learningRate = lr }
    }
}
