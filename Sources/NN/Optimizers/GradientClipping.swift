/// Gradient-norm clipping over all parameters together, as PyTorch's `clip_grad_norm_`.
public enum GradientClipping {
    /// The L2 norm of all gradients of `parameters` taken as one vector (accumulated in Double).
    /// Parameters without a gradient contribute nothing.
    public static func globalNorm(_ parameters: [Parameter]) -> Float {
        var total = 0.0
        for p in parameters {
            guard let g = p.gradient else { continue }
            g.withUnsafeBufferPointer { buffer in
                var i = 0
                let n = buffer.count
                // Float partial sums over short runs keep the loop vectorized; Double keeps the total accurate.
                while i < n {
                    let end = min(n, i + 256)
                    var partial: Float = 0
                    for k in i..<end { partial += buffer[k] * buffer[k] }
                    total += Double(partial)
                    i = end
                }
            }
        }
        return Float(total.squareRoot())
    }

    /// Scales every gradient by `maxNorm / (norm + 1e-6)` when the global norm exceeds `maxNorm`,
    /// so the clipped global norm is (just under) `maxNorm`. Returns the norm before clipping.
    @discardableResult
    public static func clipGlobalNorm(_ parameters: [Parameter], maxNorm: Float) -> Float {
        precondition(maxNorm > 0, "clipGlobalNorm: maxNorm \(maxNorm) must be > 0")
        let norm = globalNorm(parameters)
        let coefficient = maxNorm / (norm + 1e-6)
        guard coefficient < 1 else { return norm }
        for p in parameters {
            guard let g = p.gradient else { continue }
            let scaled = withoutGradients { g.detached * coefficient }
            // A leaf's backward accumulates its seed into its gradient: clear, then seed with the
            // scaled gradient (the one public way to set a leaf's gradient).
            p.zeroGradient()
            p.value.backward(seed: scaled)
        }
        return norm
    }

    /// Clips the gradients of all parameters of `module`; returns the norm before clipping.
    @discardableResult
    public static func clipGlobalNorm(of module: Module, maxNorm: Float) -> Float {
        clipGlobalNorm(module.parameters.filter(\.isTrainable), maxNorm: maxNorm)
    }
}
