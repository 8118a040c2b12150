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
    static func automaticWinogradTile(_ g: ConvGeometry) -> WinogradTile? {
        nil
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
