/// Inverted dropout (PyTorch `nn.Dropout`): in training mode zeroes each element with `probability`
/// and scales the rest by `1 / (1 - probability)`; in evaluation mode the identity.
///
/// The layer owns its seeded generator, so a network built with the same seeds drops the same
/// elements on every run.
public final class Dropout: Module, Layer {
    /// The probability of zeroing an element.
    public let probability: Float
    /// The generator of the masks; advances by one draw per training call.
    public var generator: SeededGenerator

    /// Creates a dropout layer with its own generator seeded by `seed`.
    public init(probability: Float = 0.5, seed: UInt64 = 0) {
        precondition(probability >= 0 && probability <= 1, "Dropout: probability \(probability) must be in [0, 1]")
        self.probability = probability
        generator = SeededGenerator(seed: seed)
    }

    /// Applies dropout in training mode; returns `input` unchanged in evaluation mode.
    public func callAsFunction(_ input: Tensor) -> Tensor {
        guard isTraining, probability > 0 else { return input }
        return dropout(input, probability: probability, generator: &generator)
    }
}
