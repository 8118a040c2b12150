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
    public static func buildExpression(_ layer: any Layer) -> [any Layer] { [layer] }
    public static func buildBlock(_ parts: [any Layer]...) -> [any Layer] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [any Layer]?) -> [any Layer] { part ?? [] }
    public static func buildEither(first: [any Layer]) -> [any Layer] { first }
    public static func buildEither(second: [any Layer]) -> [any Layer] { second }
    public static func buildArray(_ parts: [[any Layer]]) -> [any Layer] { parts.flatMap { $0 } }
}
