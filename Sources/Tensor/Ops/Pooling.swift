/// 2-D max pooling over an NCHW tensor, without padding.
///
/// The output has `(H - kernelSize) / stride + 1` rows (floor: trailing rows and columns that do
/// not fill a window are dropped) and likewise columns. `stride` defaults to `kernelSize`.
/// Backward sends each output gradient to the input element that won its window (the first
/// maximum in row-major window order); where windows overlap the contributions add. When
/// recording, the op keeps one byte per output element (the winner's offset in its window),
/// not the input.
public func maxPool2d(_ input: Tensor, kernelSize: Int = 2, stride: Int? = nil) -> Tensor {
    OpProfiler.measure(.poolingForward) {
        let (n, c, h, w) = input.shape4("maxPool2d")
        let k = kernelSize, s = stride ?? kernelSize
        precondition(k >= 1 && k <= PoolingKernels.maximumKernelSize,
                     "maxPool2d: kernelSize must be in 1...\(PoolingKernels.maximumKernelSize), got \(k)")
        precondition(s >= 1, "maxPool2d: stride must be >= 1, got \(s)")
        precondition(h >= k && w >= k, "maxPool2d: input \(input.shape) is smaller than the \(k)x\(k) window")
        let oh = (h - k) / s + 1, ow = (w - k) / s + 1
        let planes = n * c, outCount = planes * oh * ow
        var y = Tensor(uninitializedShape: [n, c, oh, ow])
        let x = input.storage.pointer, yp = y.storage.pointer

        guard Tensor.gradientNeeds(input) != nil else {
            PoolingKernels.maxPoolForward(x, yp, nil, planes: planes, height: h, width: w, kernel: k, stride: s,
                                          outputHeight: oh, outputWidth: ow)
            return y
        }
        let argmax = [UInt8](unsafeUninitializedCapacity: outCount) { buffer, initialized in
            PoolingKernels.maxPoolForward(x, yp, buffer.baseAddress, planes: planes, height: h, width: w,
                                          kernel: k, stride: s, outputHeight: oh, outputWidth: ow)
            initialized = outCount
        }
        let inputShape = input.shape
        y.recordOp("maxPool2d", profiledAs: .poolingBackward, inputs: [input]) { g in
            let dx = Tensor(uninitializedShape: inputShape)
            argmax.withUnsafeBufferPointer { a in
                guard let a = a.baseAddress else { return }  // empty tensor
                PoolingKernels.maxPoolBackward(g.storage.pointer, a, dx.storage.pointer,
                                               planes: planes, height: h, width: w, kernel: k, stride: s,
                                               outputHeight: oh, outputWidth: ow)
            }
            return [dx]
        }
        return y
    }
}
