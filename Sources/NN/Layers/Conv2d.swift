/// A 2-D convolution layer over NCHW input (PyTorch `nn.Conv2d`): weight `[Cout, Cin, k, k]`, optional
/// bias `[Cout]`, named `weight` and `bias` as in PyTorch.
///
/// ```swift
/// var rng = SeededGenerator(seed: 42)
/// let conv = Conv2d(inputChannels: 1, outputChannels: 64, kernelSize: 3, padding: .same, generator: &rng)
/// let y = conv(x)   // [N, 64, H, W]
/// ```
public final class Conv2d: Module, Layer {
    /// The kernel `[outputChannels, inputChannels, kernelSize, kernelSize]`.
    public let weight: Parameter
    /// The per-output-channel bias, or nil for a convolution without bias (e.g. before batch norm).
    public let bias: Parameter?
    /// Step between kernel positions.
    public let stride: Int
    /// Zero padding of the input.
    public let padding: ConvPadding
    /// Spacing between kernel taps.
    public let dilation: Int

    /// Creates a convolution with weights from `weightInitializer` (He normal by default) and a zero bias.
    public init(inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1,
                padding: ConvPadding = .valid, dilation: Int = 1, bias: Bool = true,
                weightInitializer: Initializer = .heNormal(), biasInitializer: Initializer = .zeros,
                generator: inout SeededGenerator) {
        precondition(inputChannels > 0 && outputChannels > 0 && kernelSize > 0,
                     "Conv2d: channels (\(inputChannels), \(outputChannels)) and kernelSize \(kernelSize) must be positive")
        precondition(stride >= 1 && dilation >= 1, "Conv2d: stride \(stride) and dilation \(dilation) must be >= 1")
        let shape = [outputChannels, inputChannels, kernelSize, kernelSize]
        weight = Parameter(weightInitializer.makeTensor(shape: shape, generator: &generator))
        self.bias = bias ? Parameter(biasInitializer.makeTensor(shape: [outputChannels], generator: &generator)) : nil
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
    }

    /// Input channels.
    public var inputChannels: Int { weight.shape[1] }
    /// Output channels.
    public var outputChannels: Int { weight.shape[0] }
    /// Kernel height and width.
    public var kernelSize: Int { weight.shape[2] }

    /// Convolves `input` `[N, Cin, H, W]`.
    public func callAsFunction(_ input: Tensor) -> Tensor {
        conv2d(input, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, dilation: dilation)
    }
}
