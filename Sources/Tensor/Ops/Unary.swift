#if canImport(Glibc)
import Glibc
#endif

extension Tensor {
    /// Applies `f` elementwise; when recording, `derivative(x, y)` gives dy/dx for the backward pass.
    @inline(__always)
    func unary(_ op: String, _ f: (Float) -> Float, derivative: @escaping (Float, Float) -> Float) -> Tensor {
        var y = Tensor(uninitializedShape: shape)
        ElementwiseKernels.map(storage.pointer, y.storage.pointer, count, f)
        if Tensor.gradientNeeds(self) != nil {
            let x = self.detached, yv = y.detached
            y.recordOp(op, inputs: [self]) { g in
                let dx = Tensor(uninitializedShape: x.shape)
                ElementwiseKernels.zip3(x.storage.pointer, yv.storage.pointer, g.storage.pointer,
                                        dx.storage.pointer, x.count) { xi, yi, gi in gi * derivative(xi, yi) }
                return [dx]
            }
        }
        return y
    }

    /// e^x elementwise.
    public func exp() -> Tensor { unary("exp", { expf($0) }, derivative: { _, y in y }) }
    /// Natural logarithm elementwise.
    public func log() -> Tensor { unary("log", { logf($0) }, derivative: { x, _ in 1 / x }) }
    /// Square root elementwise.
    public func sqrt() -> Tensor { unary("sqrt", { $0.squareRoot() }, derivative: { _, y in 0.5 / y }) }
    /// x^p elementwise for a scalar exponent.
    public func pow(_ p: Float) -> Tensor {
        unary("pow", { powf($0, p) }, derivative: { x, _ in p * powf(x, p - 1) })
    }
    /// max(x, 0) elementwise.
    public func relu() -> Tensor { unary("relu", { $0 > 0 ? $0 : 0 }, derivative: { x, _ in x > 0 ? 1 : 0 }) }
    /// Exponential linear unit: x for x > 0, alpha * (e^x - 1) otherwise.
    /// Vectorized (ActivationKernels); backward keeps only the output: the derivative is y + alpha
    /// where y <= 0.
    public func elu(alpha: Float = 1) -> Tensor {
        var y = Tensor(uninitializedShape: shape)
        let act = EluActivationKernel(alpha: alpha)
        ActivationKernels.forward(storage.pointer, y.storage.pointer, count, act)
        if Tensor.gradientNeeds(self) != nil {
            let yv = y.detached
            y.recordOp("elu", inputs: [self]) { g in
                let dx = Tensor(uninitializedShape: yv.shape)
                ActivationKernels.backward(yv.storage.pointer, yv.storage.pointer, g.storage.pointer,
                                           dx.storage.pointer, yv.count, act)
                return [dx]
            }
        }
        return y
    }
    /// The logistic function 1 / (1 + e^-x) elementwise.
    public func sigmoid() -> Tensor {
        unary("sigmoid", { 1 / (1 + expf(-$0)) }, derivative: { _, y in y * (1 - y) })
    }
    /// Hyperbolic tangent elementwise.
    public func tanh() -> Tensor { unary("tanh", { tanhf($0) }, derivative: { _, y in 1 - y * y }) }
    /// Limits every element to `[lowerBound, upperBound]`; the gradient is 1 inside, 0 outside.
    public func clamped(lowerBound: Float, upperBound: Float) -> Tensor {
        precondition(lowerBound <= upperBound, "clamped: lowerBound \(lowerBound) > upperBound \(upperBound)")
        return unary("clamp", { Swift.min(Swift.max($0, lowerBound), upperBound) },
                     derivative: { x, _ in x >= lowerBound && x <= upperBound ? 1 : 0 })
    }
    /// Squares every element.
    public func squared() -> Tensor { unary("square", { $0 * $0 }, derivative: { x, _ in 2 * x }) }
}
