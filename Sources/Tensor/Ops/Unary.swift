extension Tensor {
    /// Applies `f` elementwise and records its derivative for the backward pass, profiled as `forward`
    /// and `backward`.
    @inline(__always)
    func unary<F: DifferentiableUnaryFunction>(_ op: String, _ f: F, forward: OpProfiler.Category = .elementwiseForward,
                                               backward: OpProfiler.Category = .elementwiseBackward) -> Tensor {
        var y = Tensor(uninitializedShape: shape)
        OpProfiler.measure(forward) {
            ElementwiseKernels.map(storage.pointer, y.storage.pointer, count, f)
        }
        if Tensor.gradientNeeds(self) != nil {
            let x = self.detached, yv = y.detached
            y.recordOp(op, profiledAs: backward, inputs: [self]) { g in
                let dx = Tensor(uninitializedShape: x.shape)
                ElementwiseKernels.derivative(x.storage.pointer, yv.storage.pointer, g.storage.pointer,
                                              dx.storage.pointer, x.count, f)
                return [dx]
            }
        }
        return y
    }

    /// e^x elementwise (relative error below 3e-7; see `FastMath.exp`).
    public func exp() -> Tensor { unary("exp", ExpFunction()) }
    /// Natural logarithm elementwise.
    public func log() -> Tensor { unary("log", LogFunction()) }
    /// Square root elementwise.
    public func sqrt() -> Tensor { unary("sqrt", SqrtFunction()) }
    /// x^p elementwise for a scalar exponent.
    public func pow(_ p: Float) -> Tensor { unary("pow", PowFunction(p: p)) }
    /// max(x, 0) elementwise.
    public func relu() -> Tensor { unary("relu", ReLUFunction(), forward: .activationForward, backward: .activationBackward) }
    /// Exponential linear unit: x for x > 0, alpha * (e^x - 1) otherwise.
    /// Vectorized (ActivationKernels); backward keeps only the output: the derivative is y + alpha
    /// where y <= 0.
    public func elu(alpha: Float = 1) -> Tensor {
        var y = Tensor(uninitializedShape: shape)
        let act = EluActivationKernel(alpha: alpha)
        OpProfiler.measure(.activationForward) {
            ActivationKernels.forward(storage.pointer, y.storage.pointer, count, act)
        }
        if Tensor.gradientNeeds(self) != nil {
            let yv = y.detached
            y.recordOp("elu", profiledAs: .activationBackward, inputs: [self]) { g in
                let dx = Tensor(uninitializedShape: yv.shape)
                ActivationKernels.backward(yv.storage.pointer, yv.storage.pointer, g.storage.pointer,
                                           dx.storage.pointer, yv.count, act)
                return [dx]
            }
        }
        return y
    }
    /// The logistic function 1 / (1 + e^-x) elementwise.
    public func sigmoid() -> Tensor { unary("sigmoid", SigmoidFunction(), backward: .activationBackward) }
    /// Hyperbolic tangent elementwise.
    public func tanh() -> Tensor { unary("tanh", TanhFunction(), backward: .activationBackward) }
    /// Limits every element to `[lowerBound, upperBound]`; the gradient is 1 inside, 0 outside.
    public func clamped(lowerBound: Float, upperBound: Float) -> Tensor {
        precondition(lowerBound <= upperBound, "clamped: lowerBound \(lowerBound) > upperBound \(upperBound)")
        return unary("clamp", ClampFunction(lower: lowerBound, upper: upperBound))
    }
    /// Squares every element.
    public func squared() -> Tensor { unary("square", SquareFunction()) }
    /// `scale * self + shift`, elementwise.
    public func affine(scale: Float, shift: Float) -> Tensor { unary("affine", AffineFunction(scale: scale, shift: shift)) }
}
