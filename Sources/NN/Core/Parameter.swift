/// A trainable tensor of a module: a tape leaf whose gradient `backward()` fills.
///
/// Modules hold parameters as `let` properties; optimizers update `value` in place by name.
public final class Parameter {
    /// The current value, always a tape leaf (`requiresGradient` is true while `isTrainable`).
    public var value: Tensor {
        didSet { if isTrainable && !value.requiresGradient { value = value.requiringGradient() } }
    }
    /// False freezes the parameter: it no longer records gradients and optimizers skip it.
    public var isTrainable: Bool {
        didSet { value = isTrainable ? value.detached.requiringGradient() : value.detached }
    }
    /// The name used in place of the property name in dotted paths (e.g. PyTorch's "running_mean").
    public let key: String?

    /// Wraps `value` as a trainable leaf.
    public init(_ value: Tensor, key: String? = nil, trainable: Bool = true) {
        self.value = trainable ? value.detached.requiringGradient() : value.detached
        self.isTrainable = trainable
        self.key = key
    }

    /// The gradient accumulated by `backward()` since the last `zeroGradient()`.
    public var gradient: Tensor? { value.gradient }

    /// Clears the accumulated gradient.
    public func zeroGradient() { value.zeroGradient() }

    /// The shape of the value.
    public var shape: [Int] { value.shape }

    /// Replaces the values in place, keeping the tape leaf and its identity (for checkpoint loading
    /// and optimizers). `newValue` must have the same shape.
    public func assign(_ newValue: Tensor) {
        precondition(newValue.shape == value.shape, "Parameter.assign: shape \(newValue.shape) differs from \(value.shape)")
        let source = newValue
        value.withUnsafeMutableBufferPointer { dst in
            source.withUnsafeBufferPointer { dst.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
        }
    }
}

/// A non-trainable tensor that is part of a module's state (e.g. batch norm's running mean):
/// saved in checkpoints, never touched by optimizers.
public final class Buffer {
    /// The current value (never on the tape).
    public var value: Tensor
    /// The name used in place of the property name in dotted paths (e.g. "running_mean").
    public let key: String?

    /// Wraps `value`.
    public init(_ value: Tensor, key: String? = nil) {
        self.value = value.detached
        self.key = key
    }

    /// Replaces the values; `newValue` must have the same shape.
    public func assign(_ newValue: Tensor) {
        precondition(newValue.shape == value.shape, "Buffer.assign: shape \(newValue.shape) differs from \(value.shape)")
        value = newValue.detached
    }
}
