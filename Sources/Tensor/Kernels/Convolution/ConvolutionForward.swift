extension ConvolutionKernels {
    /// `output = conv(input, weight) + bias`. Buffers: input `[N, Cin, H, W]`, weight
    /// `[Cout, Cin, kh, kw]`, bias `[Cout]` or nil, output `[N, Cout, outH, outW]` (overwritten).
    /// `policy` forces a path (tests, benchmarks); the ops use the default.
    package static func forward(_ g: ConvGeometry, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                                policy: ConvolutionPolicy = .automatic) {
        precondition(g.isValid, "ConvolutionKernels.forward: invalid geometry \(g)")
        if g.batch == 0 { return }
        if let tile = winogradTile(g, policy),
           WinogradConvolution.forward(g, tile: tile, input: input, weight: weight, bias: bias, output: output,
                                       parallelism: policy.parallelism) { return }
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
                let (b, ldb) = columns(of: x, g, pixels: range, s, workspace: ws, lane: lane)
                Gemm.sgemm(m: m, n: n, k: k, a: weight, lda: k, b: b, ldb: ldb,
                           beta: bias == nil ? 0 : 1, c: y, ldc: pixels, threads: s.gemmThreads)
            }
        }
    }

    /// The column operand of the forward and weight-gradient GEMMs for output pixels `range` of the
    /// image `x`, with its row stride: the input planes themselves for a pointwise convolution, else
    /// the block's im2col, written into lane `lane`'s slice of the workspace `ws`.
    static func columns(of x: UnsafePointer<Float>, _ g: ConvGeometry, pixels range: Range<Int>, _ s: Schedule,
                        workspace ws: UnsafeMutablePointer<Float>, lane: Int) -> (matrix: UnsafePointer<Float>, stride: Int) {
        if g.isPointwise { return (x + range.lowerBound, g.outPixels) }
        let col = ws + lane * s.laneFloats
        forChannels(g.inChannels, work: g.columnRows * range.count, parallel: s.splitsOverThreads) { channels in
            Im2Col.im2col(x, g, pixels: range, channels: channels, into: col, stride: s.columnStride)
        }
        return (UnsafePointer(col), s.columnStride)
    }
}
