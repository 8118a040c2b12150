/// Which parameters a weight penalty covers.
public enum ParameterSelection {
    /// Every trainable parameter.
    case all
    /// Trainable weights of rank >= 2 whose name ends in `weight` (convolution and linear kernels);
    /// biases and batch-norm scales and offsets are left out.
    case weightsOnly
    /// The trainable parameters for which the predicate returns true.
    case matching((String, Parameter) -> Bool)

    /// Whether the named parameter is selected.
    public func includes(_ name: String, _ parameter: Parameter) -> Bool {
        guard parameter.isTrainable else { return false }
        switch self {
        case .all: return true
        case .weightsOnly:
            return parameter.value.rank >= 2 && (name == "weight" || name.hasSuffix(".weight"))
        case .matching(let predicate): return predicate(name, parameter)
        }
    }
}

/// The L2 penalty `lambda * sum of squared weights` of the selected parameters of `module`, as a
/// differentiable scalar to add to the loss (`loss + l2Penalty(of: model, lambda: 1e-4)`): its
/// gradient is `2 * lambda * w`. Returns a zero scalar when nothing is selected.
///
/// This is the penalty-in-the-loss form of the U-Net tutorial; it is not the same as an optimizer's
/// `weightDecay` (which adds `weightDecay * w` to the gradient: the same as `lambda = weightDecay / 2`
/// for SGD, and different again for Adam/AdamW).
public func l2Penalty(of module: Module, lambda: Float, selecting selection: ParameterSelection = .weightsOnly) -> Tensor {
    var total: Tensor?
    for (name, parameter) in module.namedParameters() where selection.includes(name, parameter) {
        let term = parameter.value.squared().sum()
        total = total.map { $0 + term } ?? term
    }
    guard let total else { return Tensor(0) }
    return total * lambda
}
