/// Batch normalization over the channels of NCHW input (PyTorch `nn.BatchNorm2d`), with an optional
/// activation fused into the same pass.
///
/// State, named as in PyTorch: parameters `weight` (scale, ones) and `bias` (offset, zeros), buffers
/// `running_mean` (zeros), `running_var` (ones) and `num_batches_tracked` (a count, stored as F32).
///
/// In training mode the layer normalizes with the batch statistics and then updates the running
/// statistics exactly as PyTorch does: with `n = N * H * W` and factor `f = momentum` (or
/// `1 / num_batches_tracked` when `momentum` is nil: a cumulative average),
/// `running_mean = (1 - f) * running_mean + f * mean` and
/// `running_var = (1 - f) * running_var + f * variance * n / (n - 1)` (the unbiased variance).
/// In evaluation mode it normalizes with the running statistics.
public final class BatchNorm2d: Module, Layer {
    /// Per-channel scale (gamma).
    public let weight: Parameter
    /// Per-channel offset (beta).
    public let bias: Parameter
    /// Running mean of each channel.
    public let runningMean: Buffer
    /// Running unbiased variance of each channel.
    public let runningVariance: Buffer
    /// Number of training batches seen.
    public let batchesTracked: Buffer
    /// Weight of the newest batch in the running statistics; nil for a cumulative average.
    public let momentum: Float?
    /// Added to the variance before the square root.
    public let epsilon: Float
    /// In training mode, sums the batch statistics over the processes of a data-parallel job
    /// (synchronized batch norm); nil normalizes with this process's batch alone.
    public var synchronizeStatistics: BatchNormStatisticsSum?

    /// Creates batch normalization for `channels` channels (PyTorch defaults).
    public init(channels: Int, momentum: Float? = 0.1, epsilon: Float = 1e-5) {
        precondition(channels > 0, "BatchNorm2d: channels \(channels) must be positive")
        if let momentum { precondition(momentum >= 0 && momentum <= 1, "BatchNorm2d: momentum \(momentum) must be in [0, 1]") }
        weight = Parameter(Tensor.ones([channels]))
        bias = Parameter(Tensor.zeros([channels]))
        runningMean = Buffer(Tensor.zeros([channels]), key: "running_mean")
        runningVariance = Buffer(Tensor.ones([channels]), key: "running_var")
        batchesTracked = Buffer(Tensor(0), key: "num_batches_tracked")
        self.momentum = momentum
        self.epsilon = epsilon
    }

    /// The number of channels.
    public var channels: Int { weight.shape[0] }

    /// Normalizes `input` `[N, C, H, W]`.
    public func callAsFunction(_ input: Tensor) -> Tensor { callAsFunction(input, activation: .identity) }

    /// Normalizes `input` `[N, C, H, W]` and applies `activation` in the same pass.
    public func callAsFunction(_ input: Tensor, activation: Activation) -> Tensor {
        let (n, c, h, w) = input.shape4("BatchNorm2d")
        precondition(c == channels, "BatchNorm2d: input \(input.shape) has \(c) channels, the layer has \(channels)")
        guard isTraining else {
            return batchNormInference(input, scale: weight.value, offset: bias.value, mean: runningMean.value,
                                      variance: runningVariance.value, epsilon: epsilon, activation: activation)
        }
        let (output, mean, variance) = batchNormTraining(input, scale: weight.value, offset: bias.value,
                                                         epsilon: epsilon, activation: activation,
                                                         synchronizing: synchronizeStatistics)
        var count = [Double(n * h * w)]
        synchronizeStatistics?(&count)
        updateRunningStatistics(mean: mean.detached, variance: variance.detached, count: Int(count[0]))
        return output
    }

    /// Folds one batch's mean and biased variance (over `count` values per channel) into the running statistics.
    func updateRunningStatistics(mean: Tensor, variance: Tensor, count: Int) {
        let tracked = batchesTracked.value.scalar + 1
        batchesTracked.value = Tensor(tracked)
        let factor = momentum ?? 1 / tracked
        let keep = 1 - factor
        let correction = count > 1 ? Float(count) / Float(count - 1) : 1
        mean.withUnsafeBufferPointer { m in
            runningMean.value.withUnsafeMutableBufferPointer { r in
                for i in r.indices { r[i] = keep * r[i] + factor * m[i] }
            }
        }
        variance.withUnsafeBufferPointer { v in
            runningVariance.value.withUnsafeMutableBufferPointer { r in
                for i in r.indices { r[i] = keep * r[i] + factor * (v[i] * correction) }
            }
        }
    }
}
