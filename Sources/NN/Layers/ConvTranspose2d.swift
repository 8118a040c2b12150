/// A 2-D transposed convolution layer (PyTorch `nn.ConvTranspose2d`): weight `[Cin, Cout, k, k]`
/// (PyTorch's layout), optional bias `[Cout]`. Output size `(H - 1) * stride - 2 * padding + k + outputPadding`.
///
/// ```swift
/// let up = ConvTranspose2d(inputChannels: 128, outputChannels: 64, kernelSize: 2, stride: 2, generator: &rng)
/// ```
public final class ConvTranspose2d: Module, Layer {
    /// The kernel `[inputChannels, outputChannels, kernelSize, kernelSize]`.
    public let weight: Parameter
    /// The per-output-channel bias, or nil.
    public let bias: Parameter?
    /// Upsampling factor.
    public let stride: Int
    /// Rows/columns removed from each side of the full output.
    public let padding: Int
    /// Extra rows/columns added at the bottom/right (less than `stride`).
    public let outputPadding: Int

    /// Creates a transposed convolution with weights from `weightInitializer` (He normal by default; the
    /// fan-in of `[Cin, Cout, k, k]` is `Cout * k * k`, as in PyTorch) and a zero bias.
    public init(inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                outputPadding: Int = 0, bias: Bool = true, weightInitializer: Initializer = .heNormal(),
                biasInitializer: Initializer = .zeros, generator: inout SeededGenerator) {
        precondition(inputChannels > 0 && outputChannels > 0 && kernelSize > 0,
                     "ConvTranspose2d: channels (\(inputChannels), \(outputChannels)) and kernelSize \(kernelSize) must be positive")
        let shape = [inputChannels, outputChannels, kernelSize, kernelSize]
        weight = Parameter(weightInitializer.makeTensor(shape: shape, generator: &generator))
        self.bias = bias ? Parameter(biasInitializer.makeTensor(shape: [outputChannels], generator: &generator)) : nil
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
    }

    /// Input channels.
    public var inputChannels: Int { weight.shape[0] }
    /// Output channels.
    public var outputChannels: Int { weight.shape[1] }
    /// Kernel height and width.
    public var kernelSize: Int { weight.shape[2] }

    /// Applies the transposed convolution to `input` `[N, Cin, H, W]`.
    public func callAsFunction(_ input: Tensor) -> Tensor {
        convTranspose2d(input, weight: weight.value, bias: bias?.value, stride: stride, padding: padding,
                        outputPadding: outputPadding)
    }
}
