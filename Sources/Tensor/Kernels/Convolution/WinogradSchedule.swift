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

    /// The default choice per layer shape, PROVISIONAL: measured on a busy 2-core machine (AMD
    /// EPYC Zen 5, other trainings running, `unet-tune winograd`, interleaved medians; see
    /// docs/PERFORMANCE.md, "Winograd (provisional)"). It enables Winograd only where those A/B
    /// runs showed a clear (> 1.3x) win over the exact path of the same call with both OpenBLAS
    /// kernels of that machine (`Haswell`, as the machine pins it, and OpenBLAS's own `Cooperlake`);
    /// the crossovers are to be remeasured on a quiet machine.
    ///
    /// F(4x4) beat the exact path by 1.4-3x in both settings on layers with 64+ channels on each
    /// side, Cin*Cout up to 384*128 and at least 1024 tiles of 4x4 per call (base 64 on 512^2:
    /// enc1b 64->64, enc2a, enc2b, enc3a 128->256, dec2a 384->128, dec1a 192->64; base 16 on
    /// 4 x 256^2: enc3b 64->64 and dec3a 192->64 at 64^2). Not clear in both: wider layers
    /// (256->256 and 256->512 at 128^2-64^2: 1.0-1.8x; 512->512 at 64^2 with F2: 0.9-1.5x; dec3a
    /// 768->256: 1.3-1.55x), fewer tiles (32^2 and less with batch 4 and below), and thin layers
    /// (16-48 channels on a side), where the `Cooperlake` kernel's small-matrix GEMMs make the
    /// tap path fast (0.7-1.9x). With one input channel Winograd was 2-10x slower. F(2x2) is never
    /// the default.
    static func automaticWinogradTile(_ g: ConvGeometry) -> WinogradTile? {
        let cin = g.inChannels, cout = g.outChannels
        guard Swift.min(cin, cout) >= 64 && cin * cout <= 384 * 128 else { return nil }
        let tiles = g.batch * ((g.outHeight + 3) / 4) * ((g.outWidth + 3) / 4)
        return tiles >= 1024 ? .f4 : nil
    }

    /// The Winograd tile of the weight gradient of `g` under `policy`, or nil for the exact paths:
    /// as `winogradTile` (the same shapes gain in both directions).
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
