extension ConvolutionKernels {
    /// The Winograd tile that computes the forward convolution `g` under `policy`, or nil for the
    /// exact paths: none where Winograd does not apply (`WinogradConvolution.eligible`); the
    /// forced tile under `.winograd`; under `.automatic`, none in `ConvolutionMode.exact`, else
    /// the measured choice for the shape (`automaticWinogradTile`).
    static func winogradTile(_ g: ConvGeometry, _ policy: ConvolutionPolicy) -> WinogradTile? {
        guard WinogradConvolution.eligible(g) else { return nil }
        switch policy.algorithm {
        case .exact: return nil
        case .winograd(let tile): return tile
        case .automatic: return ConvolutionMode.current == .fast ? automaticWinogradTile(g) : nil
        }
    }

    /// The default choice per layer shape, from per-layer A/B runs on a quiet 2-core AMD EPYC
    /// Zen 5 (`unet-tune winograd`, least of 3-5 interleaved rounds, forward, backward-data and
    /// weight gradient; docs/PERFORMANCE.md, "Weight gradient by Winograd, quiet schedule"), with both OpenBLAS
    /// kernels of that machine (`Cooperlake`, its own choice, and `Haswell`):
    /// - F(4x4) wins on every U-Net layer with 16+ channels on each side and enough tiles: 1.0-1.5x
    ///   on the thinnest (16->16, 48->16) with `Cooperlake`'s small-matrix GEMMs, 1.4-2.3x from 32
    ///   channels up and with `Haswell`. With one input or output channel (the first layer, and its
    ///   backward-data as the flipped forward) it is 2-3x slower.
    /// - With few tiles (64 per call: 16^2 with batch 4, 32^2 with batch 1), or above 768x256
    ///   channel pairs (512->512), F(2x2) is the better one (1.2-1.4x): its 16 transform points
    ///   keep the transformed filters and blocks within the workspace, which F(4x4)'s 36 do not.
    /// - Above 512x512 channel pairs (the base-64 bottleneck and its decoder layer) neither fits the
    ///   workspace well and both measured level with the exact path.
    /// - With a 256-bit (AVX2) kernel (`blasVectorBits`), whose GEMMs run at about half the rate,
    ///   F(2x2) also wins on those wide layers up to 1536x512 channel pairs (base 64's first
    ///   bottleneck layer and dec4a: 1.2-1.5x on a Zen 3 with OpenBLAS's `Zen` kernel; docs/PERFORMANCE.md,
    ///   "A Zen 3 machine"). 1024->1024 stays level with the exact path there too.
    /// The weight gradient follows the same choice (`winogradWeightGradientTile`).
    static func automaticWinogradTile(_ g: ConvGeometry, blasVectorBits: Int? = BLASKernel.vectorBits) -> WinogradTile? {
        let cin = g.inChannels, cout = g.outChannels
        guard Swift.min(cin, cout) >= 16 else { return nil }
        let tiles = g.batch * ((g.outHeight + 3) / 4) * ((g.outWidth + 3) / 4)
        let pairs = cin * cout
        if pairs <= 768 * 256 && tiles >= 128 { return .f4 }
        let widestF2 = (blasVectorBits ?? 512) <= 256 ? 1536 * 512 : 512 * 512
        if pairs <= widestF2 && tiles >= 64 { return .f2 }
        return nil
    }

    /// The Winograd tile of the weight gradient of `g` under `policy`, or nil for the exact paths:
    /// as `winogradTile` (the A/B runs found the same shapes gaining in all three directions).
    static func winogradWeightGradientTile(_ g: ConvGeometry, _ policy: ConvolutionPolicy) -> WinogradTile? {
        winogradTile(g, policy)
    }

    /// The path `forward` takes for `g` under `policy`, for reports: "winograd F4"/"winograd F2",
    /// "tap", "pointwise" or "im2col".
    package static func forwardPath(_ g: ConvGeometry, policy: ConvolutionPolicy = .automatic) -> String {
        if let tile = winogradTile(g, policy), WinogradConvolution.plan(g, tile: tile, parallelism: policy.parallelism) != nil {
            return "winograd F\(tile.m)"
        }
        if policy.tapGemms && TapConvolution.applies(to: g),
           TapConvolution.plan(g, scratchPerPixel: g.outChannels, parallelism: policy.parallelism) != nil { return "tap" }
        return g.isPointwise ? "pointwise" : "im2col"
    }

    /// The path `backwardData` takes for `g` under `policy`, for reports: "pointwise", "scatter",
    /// "flipped " followed by the flipped forward's path, or "col2im".
    package static func backwardDataPath(_ g: ConvGeometry, policy: ConvolutionPolicy = .automatic) -> String {
        if g.isPointwise { return "pointwise" }
        if g.isNonOverlapping { return "scatter" }
        if let flipped = transposedGeometry(g), useTransposedForward(g, policy) {
            return "flipped " + forwardPath(flipped, policy: policy)
        }
        return "col2im"
    }

    /// The path `backwardWeight` takes for `g` under `policy`, for reports: "winograd F4"/"winograd F2",
    /// "tap", "pointwise" or "im2col".
    package static func backwardWeightPath(_ g: ConvGeometry, policy: ConvolutionPolicy = .automatic) -> String {
        if let tile = winogradWeightGradientTile(g, policy),
           WinogradConvolution.plan(g, tile: tile, parallelism: policy.parallelism, filtersPerLane: true) != nil {
            return "winograd F\(tile.m)"
        }
        if policy.tapGemms && TapConvolution.applies(to: g),
           TapConvolution.plan(g, scratchPerPixel: g.outChannels, parallelism: policy.parallelism) != nil { return "tap" }
        return g.isPointwise ? "pointwise" : "im2col"
    }
}
