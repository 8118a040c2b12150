/// Applies an `Activation` elementwise: the layer form of any activation.
///
/// ```swift
/// let act = ActivationLayer(.elu(alpha: 1))
/// let y = act(x)   // x.activated(.elu(alpha: 1))
/// ```
public final class ActivationLayer: Module, Layer {
    /// The function applied.
    public let activation: Activation
    /// Creates the layer.
    public init(_ activation: Activation) { self.activation = activation }
    /// Applies the activation elementwise.
    public func callAsFunction(_ input: Tensor) -> Tensor { input.activated(activation) }
}

/// The rectified linear unit `max(x, 0)` as a layer.
public final class ReLU: Module, Layer {
    /// Creates the layer.
    public override init() { super.init() }
    /// Applies ReLU elementwise.
    public func callAsFunction(_ input: Tensor) -> Tensor { input.relu() }
}

/// The exponential linear unit as a layer: `x` for `x > 0`, `alpha * (e^x - 1)` otherwise.
public final class ELU: Module, Layer {
    /// The saturation value for negative inputs is `-alpha`.
    public let alpha: Float
    /// Creates the layer.
    public init(alpha: Float = 1) { self.alpha = alpha }
    /// Applies ELU elementwise.
    public func callAsFunction(_ input: Tensor) -> Tensor { input.elu(alpha: alpha) }
}

/// A layer that returns its input: a placeholder where a configuration turns a layer off.
public final class Identity: Module, Layer {
    /// Creates the layer.
    public override init() { super.init() }
    /// Returns `input`.
    public func callAsFunction(_ input: Tensor) -> Tensor { input }
}
