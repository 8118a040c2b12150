/// 2-D transposed convolution (PyTorch's `conv_transpose2d`, "deconvolution") of an NCHW `input`
/// `[N, Cin, H, W]` with `weight` `[Cin, Cout, kh, kw]` (PyTorch's layout) and an optional `bias`
/// `[Cout]`. The output is `[N, Cout, (H-1)*stride - 2*padding + kh + outputPadding, ...]`.
///
/// It is the adjoint of `conv2d` with the same weight, stride and padding: forward runs the
/// convolution's backward-data kernel and backward runs its forward and weight kernels, as Caffe's
/// deconvolution layer does. Kernel == stride without padding (U-Net's `k2 s2` up-convolution) is one
/// GEMM and a scatter with no overlap. Differentiable with respect to input, weight and bias.
///
/// ```swift
/// let up = convTranspose2d(x, weight: w, stride: 2)   // w [C, C, 2, 2]: doubles H and W
/// ```
public func convTranspose2d(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1,
                            padding: Int = 0, outputPadding: Int = 0) -> Tensor {
    OpProfiler.measure(.transposedConvForward) {
        let (n, cin, h, w, cout, kh, kw) = convolutionOperands("convTranspose2d", input, weight: weight, bias: bias,
                                                               weightLayout: "[Cin, Cout, kh, kw]", channelAxis: 0)
        precondition(stride >= 1 && padding >= 0 && outputPadding >= 0 && outputPadding < stride,
                     "convTranspose2d: need stride >= 1, padding >= 0 and 0 <= outputPadding < stride; got stride \(stride), padding \(padding), outputPadding \(outputPadding)")
        let outH = (h - 1) * stride - 2 * padding + kh + outputPadding
        let outW = (w - 1) * stride - 2 * padding + kw + outputPadding
        precondition(outH > 0 && outW > 0 && cout > 0,
                     "convTranspose2d: input \(input.shape) with weight \(weight.shape), stride \(stride), padding \(padding) gives an empty output")
        // The convolution this op is the adjoint of: it maps [N, Cout, outH, outW] to [N, Cin, h, w].
        let g = ConvGeometry(batch: n, inChannels: cout, height: outH, width: outW, outChannels: cin,
                             kernelHeight: kh, kernelWidth: kw, stride: stride, dilation: 1,
                             padTop: padding, padBottom: padding, padLeft: padding, padRight: padding)
        precondition(g.isValid && g.outHeight == h && g.outWidth == w,
                     "convTranspose2d: inconsistent geometry \(g) for input \(input.shape) and weight \(weight.shape)")

        var y = Tensor(uninitializedShape: [n, cout, outH, outW])
        ConvolutionKernels.backwardData(g, outputGradient: input.storage.pointer, weight: weight.storage.pointer,
                                        inputGradient: y.storage.pointer,
                                        addingBias: bias.map { UnsafePointer($0.storage.pointer) })

        if let tape = convolutionTape(input, weight: weight, bias: bias) {
            let (needs, x, wv) = (tape.needs, tape.input, tape.weight)
            y.recordOp("convTranspose2d", profiledAs: .transposedConvBackward, inputs: tape.inputs) { grad in
                var dx: Tensor? = nil, dw: Tensor? = nil, db: Tensor? = nil
                if needs[0], let wv {
                    let d = Tensor(uninitializedShape: [n, cin, h, w])
                    ConvolutionKernels.forward(g, input: grad.storage.pointer, weight: wv.storage.pointer, bias: nil,
                                               output: d.storage.pointer)
                    dx = d
                }
                if needs[1], let x {
                    let d = Tensor(uninitializedShape: [cin, cout, kh, kw])
                    ConvolutionKernels.backwardWeight(g, input: grad.storage.pointer, outputGradient: x.storage.pointer,
                                                      weightGradient: d.storage.pointer, biasGradient: nil)
                    dw = d
                }
                if needs.count > 2 && needs[2] {
                    let d = Tensor(uninitializedShape: [cout])
                    ConvolutionKernels.channelSums(grad.storage.pointer, batch: n, channels: cout, pixels: outH * outW,
                                                   into: d.storage.pointer)
                    db = d
                }
                return Array([dx, dw, db].prefix(needs.count))
            }
        }
        return y
    }
}
