import NN

/// Two [3x3 convolution -> batch norm -> activation] units: one encoder/decoder level's body.
/// Batch norm and the activation run as one fused op.
public final class DoubleConvBlock: Module {
    /// First convolution.
    public let conv1: Conv2d
    /// Its batch norm (nil without batch norm).
    public let bn1: BatchNorm2d?
    /// Second convolution.
    public let conv2: Conv2d
    /// Its batch norm.
    public let bn2: BatchNorm2d?
    let activation: Activation

    init(inputChannels: Int, outputChannels: Int, configuration c: UNetConfiguration, generator: inout SeededGenerator) {
        let padding: ConvPadding = c.padding == .same ? .same : .valid
        conv1 = Conv2d(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: 3, padding: padding,
                       bias: !c.batchNorm, generator: &generator)
        bn1 = c.batchNorm ? BatchNorm2d(channels: outputChannels) : nil
        conv2 = Conv2d(inputChannels: outputChannels, outputChannels: outputChannels, kernelSize: 3, padding: padding,
                       bias: !c.batchNorm, generator: &generator)
        bn2 = c.batchNorm ? BatchNorm2d(channels: outputChannels) : nil
        activation = Activation(c.activation)
        super.init()
    }

    /// Applies both units.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        normalizeAndActivate(conv2(normalizeAndActivate(conv1(x), bn1)), bn2)
    }

    func normalizeAndActivate(_ x: Tensor, _ bn: BatchNorm2d?) -> Tensor {
        if let bn { return bn(x, activation: activation) }
        return x.activated(activation)
    }
}

/// One decoder level: 2x2 stride-2 transposed convolution -> batch norm -> activation, concatenation
/// with the encoder's skip (centre-cropped for valid padding), then a `DoubleConvBlock`.
public final class UpBlock: Module {
    /// The up-convolution.
    public let up: ConvTranspose2d
    /// Its batch norm (PyTorch-style name `up_bn`).
    public let upNorm: BatchNorm2d?
    /// The convolutions after the concatenation.
    public let convs: DoubleConvBlock
    let activation: Activation

    init(inputChannels: Int, skipChannels: Int, configuration c: UNetConfiguration, generator: inout SeededGenerator) {
        let upChannels = c.upsampling == .keepChannels ? inputChannels : inputChannels / 2
        up = ConvTranspose2d(inputChannels: inputChannels, outputChannels: upChannels, kernelSize: 2, stride: 2,
                             bias: !c.batchNorm, generator: &generator)
        upNorm = c.batchNorm ? BatchNorm2d(channels: upChannels) : nil
        convs = DoubleConvBlock(inputChannels: upChannels + skipChannels, outputChannels: skipChannels,
                                configuration: c, generator: &generator)
        activation = Activation(c.activation)
        super.init()
    }

    override public var namedChildren: [(String, Module)] {
        var children: [(String, Module)] = [("up", up)]
        if let upNorm { children.append(("up_bn", upNorm)) }
        children.append(("convs", convs))
        return children
    }

    /// Upsamples `x`, joins it with `skip` and convolves.
    public func callAsFunction(_ x: Tensor, skip: Tensor) -> Tensor {
        var u = up(x)
        u = upNorm.map { $0(u, activation: activation) } ?? u.activated(activation)
        let (_, _, h, w) = u.shape4("UpBlock")
        let s = skip.shape[2] == h && skip.shape[3] == w ? skip : skip.centerCropped(height: h, width: w)
        return convs(Tensor.concatenate([u, s], alongAxis: 1))
    }
}

/// The U-Net (Ronneberger et al., 2015) as the Lasagne tutorial builds it, configurable through
/// `UNetConfiguration`.
///
/// Parameter names follow the module tree: `encoder.0.conv1.weight`, `encoder.0.bn1.running_mean`,
/// `bottleneck.conv2.weight`, `decoder.0.up.weight`, `decoder.0.up_bn.weight`,
/// `decoder.0.convs.conv1.weight`, `head.weight`, `head.bias` (see docs/CHECKPOINTS.md).
///
/// ```swift
/// var rng = SeededGenerator(seed: 0)
/// let model = UNetModel(configuration: UNetConfiguration(baseFilters: 16), generator: &rng)
/// let logits = model(Tensor.zeros([1, 1, 256, 256]))   // [1, 2, 256, 256]
/// ```
public final class UNetModel: Module {
    /// The architecture.
    public let configuration: UNetConfiguration
    /// Encoder levels, full resolution first.
    public let encoder: [DoubleConvBlock]
    /// The block at the lowest resolution.
    public let bottleneck: DoubleConvBlock
    /// Decoder levels, lowest resolution first.
    public let decoder: [UpBlock]
    /// The final 1x1 convolution to class logits.
    public let head: Conv2d
    /// Drives dropout before the bottleneck.
    var dropoutGenerator: SeededGenerator

    /// A new model with He-normal weights drawn from `generator`. The configuration must be valid
    /// (`validate()`); an invalid one stops with its error message.
    public init(configuration c: UNetConfiguration, generator: inout SeededGenerator) {
        do { try c.validate() } catch { preconditionFailure("\(error)") }
        configuration = c
        var enc: [DoubleConvBlock] = []
        var channels = c.inputChannels
        for level in 0..<c.depth {
            enc.append(DoubleConvBlock(inputChannels: channels, outputChannels: c.filters(atLevel: level),
                                       configuration: c, generator: &generator))
            channels = c.filters(atLevel: level)
        }
        encoder = enc
        bottleneck = DoubleConvBlock(inputChannels: channels, outputChannels: c.filters(atLevel: c.depth),
                                     configuration: c, generator: &generator)
        channels = c.filters(atLevel: c.depth)
        var dec: [UpBlock] = []
        for level in stride(from: c.depth - 1, through: 0, by: -1) {
            dec.append(UpBlock(inputChannels: channels, skipChannels: c.filters(atLevel: level),
                               configuration: c, generator: &generator))
            channels = c.filters(atLevel: level)
        }
        decoder = dec
        head = Conv2d(inputChannels: channels, outputChannels: c.classes, kernelSize: 1, bias: true, generator: &generator)
        dropoutGenerator = SeededGenerator(seed: generator.next())
        super.init()
    }

    /// Restarts the dropout masks from a stream that depends only on `seed`, `epoch` and `batch`. The
    /// trainer calls it before every step, so the masks of a step do not depend on how many steps this
    /// process took before it: a run resumed from a checkpoint drops the units an uninterrupted run
    /// drops (the generator's state is not in the checkpoint).
    func reseedDropout(seed: UInt64, epoch: Int, batch: Int) {
        dropoutGenerator = SeededGenerator(seed: seed ^ 0xD1B5_4A32_D192_ED03
            ^ (UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(batch) &* 0xC2B2_AE3D_27D4_EB4F))
    }

    /// Logits `[N, classes, H', W']` for images `[N, inputChannels, H, W]` (H' = H for same padding).
    /// The input side must be one the network accepts (`configuration.outputSize(forInputSize:)`).
    public func callAsFunction(_ input: Tensor) -> Tensor {
        let (_, c, h, w) = input.shape4("UNetModel")
        precondition(c == configuration.inputChannels,
                     "UNetModel: input has \(c) channels, the model expects \(configuration.inputChannels)")
        precondition(configuration.outputSize(forInputSize: h) != nil && configuration.outputSize(forInputSize: w) != nil,
                     "UNetModel: input \(h)x\(w) is not a size this network takes (e.g. \(configuration.validInputSize(atLeast: h)))")
        var x = input
        var skips: [Tensor] = []
        for block in encoder {
            x = block(x)
            skips.append(x)
            x = maxPool2d(x, kernelSize: 2)
        }
        if isTraining && configuration.dropout > 0 {
            x = dropout(x, probability: configuration.dropout, generator: &dropoutGenerator)
        }
        x = bottleneck(x)
        for (block, skip) in zip(decoder, skips.reversed()) { x = block(x, skip: skip) }
        return head(x)
    }
}

extension Activation {
    /// The activation a configuration names, applied after each convolution (fused into batch norm
    /// where there is one): ELU with alpha 1, or ReLU.
    init(_ choice: UNetConfiguration.Activation) { self = choice == .elu ? .elu(alpha: 1) : .relu }
}
