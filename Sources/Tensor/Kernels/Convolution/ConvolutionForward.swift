extension ConvolutionKernels {
    /// `output = conv(input, weight) + bias`. Buffers: input `[N, Cin, H, W]`, weight
    /// `[Cout, Cin, kh, kw]`, bias `[Cout]` or nil, output `[N, Cout, outH, outW]` (overwritten).
    /// `policy` forces a path (tests, benchmarks); the ops use the default.
    package static func forward(_ g: ConvGeometry, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                                policy: ConvolutionPolicy = .automatic) {
        precondition(g.isValid, "ConvolutionKernels.forward: invalid geometry \(g)")
        if g.batch == 0 { return }
        if policy.tapGemms && TapConvolution.applies(to: g),
           TapConvolution.forward(g, input: input, weight: weight, bias: bias, output: output,
                                  parallelism: policy.parallelism) { return }
        let pixels = g.outPixels, k = g.columnRows, m = g.outChannels
        let inImage = g.inChannels * g.inPixels, outImage = m * pixels
        let pointwise = g.isPointwise
        let s = schedule(g, floatsPerPixel: pointwise ? 0 : k, parallelism: policy.parallelism)
        ConvolutionWorkspace.withBuffer(floats: s.lanes * s.laneFloats) { ws in
            run(s) { item, lane in
                let (image, range) = s.pixels(ofItem: item, total: pixels)
                let n = range.count
                let x = input + image * inImage
                let y = output + image * outImage + range.lowerBound
                if let bias {
                    for co in 0..<m { (y + co * pixels).update(repeating: bias[co], count: n) }
                }
                let b: UnsafePointer<Float>, ldb: Int
                if pointwise {
                    b = x + range.lowerBound; ldb = pixels
                } else {
                    let col = ws + lane * s.laneFloats
                    forChannels(g.inChannels, work: k * n, parallel: s.splitsOverThreads) { channels in
                        Im2Col.im2col(x, g, pixels: range, channels: channels, into: col, stride: s.columnStride)
                    }
                    b = UnsafePointer(col); ldb = s.columnStride
                }
                Gemm.sgemm(m: m, n: n, k: k, a: weight, lda: k, b: b, ldb: ldb,
                           beta: bias == nil ? 0 : 1, c: y, ldc: pixels, threads: s.gemmThreads)
            }
        }
    }
}
