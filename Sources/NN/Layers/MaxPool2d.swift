/// 2-D max pooling over NCHW input (PyTorch `nn.MaxPool2d` without padding): windows of
/// `kernelSize x kernelSize` moved by `stride` (default: the kernel size).
public final class MaxPool2d: Module, Layer {
    /// Window height and width.
    public let kernelSize: Int
    /// Step between windows.
    public let stride: Int

    /// Creates the pooling layer; `stride` defaults to `kernelSize`.
    public init(kernelSize: Int = 2, stride: Int? = nil) {
        precondition(kernelSize >= 1 && (stride ?? 1) >= 1, "MaxPool2d: kernelSize \(kernelSize) and stride must be >= 1")
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
    }

    /// Pools `input` `[N, C, H, W]`.
    public func callAsFunction(_ input: Tensor) -> Tensor { maxPool2d(input, kernelSize: kernelSize, stride: stride) }
}
