/// Adam (Kingma & Ba) with bias correction, computing what PyTorch's `torch.optim.Adam` computes
/// (or `torch.optim.AdamW` when `decoupledWeightDecay` is set):
///
/// ```
/// t += 1                                        (per parameter)
/// p = p * (1 - lr * weightDecay)                (AdamW only)
/// g = grad + weightDecay * p                    (Adam only: L2 in the gradient)
/// m = beta1 * m + (1 - beta1) * g
/// v = beta2 * v + (1 - beta2) * g * g
/// p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + epsilon)
/// ```
///
/// State: `m.<name>` and `v.<name>` tensors and a `step.<name>` count per parameter.
public class Adam: Optimizer {
    /// "adam", or "adamw" with decoupled weight decay.
    public var kind: String { decoupledWeightDecay ? "adamw" : "adam" }
    /// The step size `lr`.
    public var learningRate: Float
    /// Decay rate of the first-moment average.
    public let beta1: Float
    /// Decay rate of the second-moment average.
    public let beta2: Float
    /// Added to the denominator for numerical stability.
    public let epsilon: Float
    /// Weight decay: L2 in the gradient (Adam) or decoupled shrinkage of the weights (AdamW).
    public let weightDecay: Float
    /// True for AdamW's decoupled weight decay.
    public let decoupledWeightDecay: Bool
    /// The parameters this optimizer updates, by dotted name.
    public var parameters: [(String, Parameter)] { table.parameters }
    private var table: SlotTable

    /// An Adam optimizer over named parameters (PyTorch defaults).
    public init(parameters: [(String, Parameter)], learningRate: Float = 1e-3, beta1: Float = 0.9,
                beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0,
                decoupledWeightDecay: Bool = false) {
        precondition(learningRate >= 0 && epsilon >= 0 && weightDecay >= 0,
                     "Adam: learningRate \(learningRate), epsilon \(epsilon), weightDecay \(weightDecay) must be >= 0")
        precondition((0..<1).contains(beta1) && (0..<1).contains(beta2), "Adam: betas (\(beta1), \(beta2)) must be in [0, 1)")
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        table = SlotTable(parameters: parameters, slotNames: ["m", "v"])
    }

    /// An Adam optimizer over all parameters of `module`.
    public convenience init(_ module: Module, learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                            epsilon: Float = 1e-8, weightDecay: Float = 0) {
        self.init(parameters: module.namedParameters(), learningRate: learningRate, beta1: beta1, beta2: beta2,
                  epsilon: epsilon, weightDecay: weightDecay)
    }

    /// The hyper-parameters as text: learning rate, betas, epsilon, weight decay and its kind.
    public var configuration: [String: String] {
        ["learning_rate": "\(learningRate)", "beta1": "\(beta1)", "beta2": "\(beta2)", "epsilon": "\(epsilon)",
         "weight_decay": "\(weightDecay)", "decoupled_weight_decay": "\(decoupledWeightDecay)"]
    }

    /// The number of steps parameter `name` has taken (0 before its first).
    public func stepCount(of name: String) -> Int {
        table.parameters.firstIndex { $0.0 == name }.map { table.steps[$0] } ?? 0
    }

    /// One Adam (or AdamW) update of every trainable parameter that has a gradient.
    public func step() {
        SlotTable.forEachGradient(of: table.parameters, optimizer: "Adam") { i, parameter, gradient in
            if table.buffers[i] == nil {
                table.buffers[i] = [Slot(Tensor.zeros(parameter.shape)), Slot(Tensor.zeros(parameter.shape))]
            }
            let slots = table.buffers[i]!
            let m = slots[0], v = slots[1]
            table.steps[i] += 1
            let step = table.steps[i]
            let count = parameter.value.count
            gradient.withUnsafeBufferPointer { g in
                parameter.value.withUnsafeMutableBufferPointer { p in
                    m.tensor.withUnsafeMutableBufferPointer { mp in
                        v.tensor.withUnsafeMutableBufferPointer { vp in
                            UpdateKernels.adam(parameter: p.baseAddress!, gradient: g.baseAddress!,
                                               m: mp.baseAddress!, v: vp.baseAddress!, count: count,
                                               step: step, learningRate: learningRate, beta1: beta1,
                                               beta2: beta2, epsilon: epsilon,
                                               l2: decoupledWeightDecay ? 0 : weightDecay,
                                               decoupledDecay: decoupledWeightDecay ? weightDecay : 0)
                        }
                    }
                }
            }
        }
    }

    /// The `m.<name>` and `v.<name>` moments, `step.<name>` counts and the learning rate.
    public func exportState() -> OptimizerState { table.export(learningRate: learningRate, includeSteps: true) }

    /// Restores state from `exportState()`; throws, changing nothing, when it does not fit.
    public func importState(_ state: OptimizerState) throws {
        if let lr = try table.importing(state, includeSteps: true) { learningRate = lr }
    }
}

/// AdamW: Adam with decoupled weight decay (Loshchilov & Hutter), as `torch.optim.AdamW`
/// (default weight decay 0.01).
public final class AdamW: Adam {
    /// An AdamW optimizer over named parameters (PyTorch defaults).
    public init(parameters: [(String, Parameter)], learningRate: Float = 1e-3, beta1: Float = 0.9,
                beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.01) {
        super.init(parameters: parameters, learningRate: learningRate, beta1: beta1, beta2: beta2,
                   epsilon: epsilon, weightDecay: weightDecay, decoupledWeightDecay: true)
    }

    /// An AdamW optimizer over all parameters of `module`.
    public convenience init(_ module: Module, learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                            epsilon: Float = 1e-8, weightDecay: Float = 0.01) {
        self.init(parameters: module.namedParameters(), learningRate: learningRate, beta1: beta1, beta2: beta2,
                  epsilon: epsilon, weightDecay: weightDecay)
    }
}
