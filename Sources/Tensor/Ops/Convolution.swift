/// Zero padding of a convolution's input.
public enum ConvPadding: Sendable, Equatable {
    /// No padding: the kernel stays inside the input.
    case valid
    /// Output size `ceil(input / stride)`; for stride 1 the output has the input's size. The total
    /// padding `max((out - 1) * stride + dilation * (k - 1) + 1 - input, 0)` is split with the extra
    /// pixel at the bottom/right, as TensorFlow's and PyTorch's 'same'.
    case same
    /// Given rows/columns of zeros on each side.
    case explicit(top: Int, bottom: Int, left: Int, right: Int)

    /// The padding per side for an input of `height x width` and the given kernel.
    public func resolve(height: Int, width: Int, kernelHeight: Int, kernelWidth: Int, stride: Int,
                        dilation: Int) -> (top: Int, bottom: Int, left: Int, right: Int) {
        switch self {
        case .valid:
            return (0, 0, 0, 0)
        case .same:
            func split(_ size: Int, _ k: Int) -> (Int, Int) {
                let out = (size + stride - 1) / stride
                let total = Swift.max((out - 1) * stride + dilation * (k - 1) + 1 - size, 0)
                return (total / 2, total - total / 2)
            }
            let (t, b) = split(height, kernelHeight), (l, r) = split(width, kernelWidth)
            return (t, b, l, r)
        case let .explicit(top, bottom, left, right):
            return (top, bottom, left, right)
        }
    }
}

/// 2-D convolution (cross-correlation, as PyTorch's `conv2d`) of an NCHW `input` `[N, Cin, H, W]`
/// with `weight` `[Cout, Cin, kh, kw]` and an optional `bias` `[Cout]`, giving
/// `[N, Cout, outH, outW]`. Differentiable with respect to input, weight and bias.
///
/// ```swift
/// let y = conv2d(x, weight: w, bias: b, padding: .same)   // 3x3, keeps H and W
/// ```
public func conv2d(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1,
                   padding: ConvPadding = .valid, dilation: Int = 1) -> Tensor {
    let (n, cin, h, w, cout, kh, kw) = convolutionOperands("conv2d", input, weight: weight, bias: bias,
                                                           weightLayout: "[Cout, Cin, kh, kw]", channelAxis: 1)
    precondition(stride >= 1 && dilation >= 1, "conv2d: stride \(stride) and dilation \(dilation) must be >= 1")
    let pad = padding.resolve(height: h, width: w, kernelHeight: kh, kernelWidth: kw, stride: stride, dilation: dilation)
    precondition(Swift.min(pad.top, pad.bottom, pad.left, pad.right) >= 0, "conv2d: negative padding \(padding)")
    let g = ConvGeometry(batch: n, inChannels: cin, height: h, width: w, outChannels: cout,
                         kernelHeight: kh, kernelWidth: kw, stride: stride, dilation: dilation,
                         padTop: pad.top, padBottom: pad.bottom, padLeft: pad.left, padRight: pad.right)
    precondition(g.isValid && cout > 0,
                 "conv2d: input \(input.shape) is too small for weight \(weight.shape) with stride \(stride), padding \(padding), dilation \(dilation)")

    var y = Tensor(uninitializedShape: [n, cout, g.outHeight, g.outWidth])
    OpProfiler.measure(.convForward) {
        ConvolutionKernels.forward(g, input: input.storage.pointer, weight: weight.storage.pointer,
                                   bias: bias.map { UnsafePointer($0.storage.pointer) }, output: y.storage.pointer,
                                   policy: .forOps)
    }

    if let tape = convolutionTape(input, weight: weight, bias: bias) {
        let (needs, x, wv) = (tape.needs, tape.input, tape.weight)
        y.recordOp("conv2d", profiledAs: .convBackward, inputs: tape.inputs) { grad in
            var dx: Tensor? = nil, dw: Tensor? = nil, db: Tensor? = nil
            if needs[0], let wv {
                let d = Tensor(uninitializedShape: [n, cin, h, w])
                OpProfiler.measure(.convBackwardData) {
                    ConvolutionKernels.backwardData(g, outputGradient: grad.storage.pointer, weight: wv.storage.pointer,
                                                    inputGradient: d.storage.pointer, policy: .forOps)
                }
                dx = d
            }
            let wantBias = needs.count > 2 && needs[2]
            if needs[1] || wantBias {
                let dwT = needs[1] ? Tensor(uninitializedShape: [cout, cin, kh, kw]) : nil
                let dbT = wantBias ? Tensor(uninitializedShape: [cout]) : nil
                OpProfiler.measure(.convBackwardWeight) {
                    ConvolutionKernels.backwardWeight(g, input: x?.storage.pointer ?? grad.storage.pointer,
                                                      outputGradient: grad.storage.pointer,
                                                      weightGradient: dwT?.storage.pointer,
                                                      biasGradient: dbT?.storage.pointer)
                }
                dw = dwT; db = dbT
            }
            return Array([dx, dw, db].prefix(needs.count))
        }
    }
    return y
}

/// The sizes of a convolution-like op's operands, checked: `input` [N, C, H, W], `weight` of rank 4
/// with C on axis `channelAxis` (laid out as `weightLayout` says) and `bias` [outputs], where outputs
/// is the other of the weight's first two axes. Stops with a message naming `op` otherwise.
func convolutionOperands(_ op: String, _ input: Tensor, weight: Tensor, bias: Tensor?, weightLayout: String,
                         channelAxis: Int) -> (n: Int, inputChannels: Int, h: Int, w: Int, outputChannels: Int, kh: Int, kw: Int) {
    let (n, c, h, w) = input.shape4("\(op) input")
    precondition(weight.rank == 4, "\(op): weight must be \(weightLayout), got shape \(weight.shape) for input \(input.shape)")
    precondition(weight.shape[channelAxis] == c,
                 "\(op): weight \(weight.shape) expects \(weight.shape[channelAxis]) input channels, input \(input.shape) has \(c)")
    let outputs = weight.shape[1 - channelAxis]
    if let bias {
        precondition(bias.shape == [outputs], "\(op): bias shape \(bias.shape) must be [\(outputs)] for weight \(weight.shape)")
    }
    return (n, c, h, w, outputs, weight.shape[2], weight.shape[3])
}

/// What a convolution-like op on (input, weight, bias?) records, or nil when it records nothing:
/// which of them need gradients (2 or 3 flags, in that order), the tape inputs, and the operands
/// the backward pass reads. The input is kept only for the weight gradient and the weight only for
/// the input gradient, so nothing else stays alive until backward.
func convolutionTape(_ input: Tensor, weight: Tensor, bias: Tensor?)
    -> (needs: [Bool], inputs: [Tensor], input: Tensor?, weight: Tensor?)? {
    let inputs = bias.map { [input, weight, $0] } ?? [input, weight]
    guard let needs = Tensor.gradientNeeds(inputs) else { return nil }
    return (needs, inputs, needs[1] ? input.detached : nil, needs[0] ? weight.detached : nil)
}
