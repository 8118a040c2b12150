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
    /// EPYC Zen 5, other trainings running, `unet-tune winograd`, interleaved least-of-n; see
    /// docs/PERFORMANCE.md, "Winograd (provisional)"). It enables Winograd only where those A/B
    /// runs showed a clear (> 1.3x) win over the exact path of the same call; the crossovers are to
    /// be remeasured on a quiet machine.
    ///
    /// Measured (2026-11-30; exact = tap GEMMs or im2col as today; medians of 5-11 interleaved
    /// rounds at load average 12-14 on 2 cores, so +-20 %): F(4x4) beat the exact path by
    /// 1.4-2.6x on every layer with 16+ channels and 256+ tiles of 4x4 per call (base 16 on
    /// 4 x 256^2 from enc2b 32->32 to dec4a 384->128 at 32^2, and dec1a 48->16; base 64 on
    /// 512^2 from enc1b to enc4a 256->512 at 64^2 and dec3a 768->256), except where Cin*Cout is
    /// large and the tiles few: 512->512 at 64^2 gained 1.25-1.57x with F4 and 1.43-1.49x with
    /// F2. Not clear: the thinnest layers (16->16 and 16->32, Cin + Cout < 64: 0.93-1.41x, mostly
    /// near 1.1x), fewer tiles (bottleneck-a 512->1024 at 32^2: F2 1.17-1.30x; 128->256 at
    /// 4 x 16^2: 1.07-1.77x), and filters that take most of the workspace (dec4a 1536->512: F2
    /// 1.22-1.35x). With one input channel (enc1a) Winograd was 2-10x slower.
    static func automaticWinogradTile(_ g: ConvGeometry) -> WinogradTile? {
        let cin = g.inChannels, cout = g.outChannels
        guard Swift.min(cin, cout) >= 16 && cin + cout >= 64 else { return nil }
        let budget = ConvolutionWorkspace.limitFloats / 2
        let tiles4 = g.batch * ((g.outHeight + 3) / 4) * ((g.outWidth + 3) / 4)
        let tiles2 = g.batch * ((g.outHeight + 1) / 2) * ((g.outWidth + 1) / 2)
        if WinogradTile.f4.points * cin * cout <= budget && (tiles4 >= 1024 || (tiles4 >= 256 && cin * cout <= 256 * 512)) {
            return .f4
        }
        if WinogradTile.f2.points * cin * cout <= budget && tiles2 >= 1024 && cin >= 128 { return .f2 }
        return nil
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

    /// The path `backwardWeight` takes for `g` under `policy`, for reports: "tap", "pointwise" or
    /// "im2col" (Winograd is not used for the weight gradient).
    package static func backwardWeightPath(_ g: ConvGeometry, policy: ConvolutionPolicy = .automatic) -> String {
        if policy.tapGemms && TapConvolution.applies(to: g),
           TapConvolution.plan(g, scratchPerPixel: g.outChannels, parallelism: policy.parallelism) != nil { return "tap" }
        return g.isPointwise ? "pointwise" : "im2col"
    }
}
