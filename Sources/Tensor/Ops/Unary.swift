/// What the backward pass of a pointwise op reads besides the incoming gradient; only that stays
/// alive until backward.
enum SavedForBackward {
    case input, output, inputAndOutput
}

extension Tensor {
    /// y = f(x) elementwise through `forward` (x, y, count), recorded with `derivative`
    /// (x, y, g, dx, count) writing dx = g * f'(x). Shared by the scalar unary functions below and
    /// the vectorised activations (`activated(_:)`). A pointer the derivative does not read (per
    /// `keeping`) points at the saved tensor instead.
    @inline(__always)
    func pointwise(_ op: String, forward: OpProfiler.Category, backward: OpProfiler.Category,
                   keeping saved: SavedForBackward,
                   _ apply: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void,
                   derivative: @escaping (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                          UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        var y = Tensor(uninitializedShape: shape)
        OpProfiler.measure(forward) { apply(storage.pointer, y.storage.pointer, count) }
        if Tensor.gradientNeeds(self) != nil {
            let x = saved == .output ? nil : self.detached
            let yv = saved == .input ? nil : y.detached
            y.recordOp(op, profiledAs: backward, inputs: [self]) { g in
                let dx = Tensor(uninitializedShape: g.shape)
                let xp = (x ?? yv!).storage.pointer, yp = (yv ?? x!).storage.pointer
                derivative(xp, yp, g.storage.pointer, dx.storage.pointer, dx.count)
                return [dx]
            }
        }
        return y
    }

    /// Applies `f` elementwise and records its derivative for the backward pass.
    @inline(__always)
    func unary<F: DifferentiableUnaryFunction>(_ op: String, _ f: F) -> Tensor {
        pointwise(op, forward: .elementwiseForward, backward: .elementwiseBackward, keeping: .inputAndOutput,
                  { ElementwiseKernels.map($0, $1, $2, f) },
                  derivative: { ElementwiseKernels.derivative($0, $1, $2, $3, $4, f) })
    }

    /// e^x elementwise (relative error below 2e-7; see `FastMath.exp`).
    public func exp() -> Tensor { unary("exp", ExpFunction()) }
    /// Natural logarithm elementwise.
    public func log() -> Tensor { unary("log", LogFunction()) }
    /// Square root elementwise.
    public func sqrt() -> Tensor { unary("sqrt", SqrtFunction()) }
    /// x^p elementwise for a scalar exponent.
    public func pow(_ p: Float) -> Tensor { unary("pow", PowFunction(p: p)) }
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
