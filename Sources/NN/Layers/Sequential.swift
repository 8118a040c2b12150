/// Layers applied one after another (PyTorch `nn.Sequential`). Children are named `0`, `1`, `2`, ...
/// so parameters read `0.weight`, `1.running_mean`, as in PyTorch.
///
/// ```swift
/// let block = Sequential {
///     Conv2d(inputChannels: 1, outputChannels: 8, kernelSize: 3, padding: .same, generator: &rng)
///     BatchNorm2d(channels: 8)
///     ReLU()
/// }
/// ```
public final class Sequential: Module, Layer {
    /// The layers in order.
    public let layers: [any Layer]

    /// Chains `layers`.
    public init(_ layers: [any Layer]) { self.layers = layers }

    /// Chains the layers the builder lists.
    public convenience init(@LayerBuilder _ build: () -> [any Layer]) { self.init(build()) }

    /// The layers named by position, `0`, `1`, ... (as `nn.Sequential`).
    public override var namedChildren: [(String, Module)] {
        layers.enumerated().map { (String($0.offset), $0.element as Module) }
    }

    /// Applies every layer in order.
    public func callAsFunction(_ input: Tensor) -> Tensor {
        layers.reduce(input) { $1($0) }
    }
}

/// Builds the layer list of a `Sequential`.
@resultBuilder
public enum LayerBuilder {
    /// One layer.
    public static func buildExpression(_ layer: any Layer) -> [any Layer] { [layer] }
    /// The layers of consecutive statements, in order.
    public static func buildBlock(_ parts: [any Layer]...) -> [any Layer] { parts.flatMap { $0 } }
    /// The layers of an `if` without `else` (none when the condition is false).
    public static func buildOptional(_ part: [any Layer]?) -> [any Layer] { part ?? [] }
    /// The layers of an `if`'s first branch.
    public static func buildEither(first: [any Layer]) -> [any Layer] { first }
    /// The layers of an `if`'s `else` branch.
    public static func buildEither(second: [any Layer]) -> [any Layer] { second }
    /// The layers of every iteration of a `for` loop, in order.
    public static func buildArray(_ parts: [[any Layer]]) -> [any Layer] { parts.flatMap { $0 } }
}
