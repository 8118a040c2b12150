#if canImport(Glibc)
import Glibc
#endif

// The elementwise functions behind the arithmetic and unary ops, as small structs so the generic
// kernels specialize and inline them. Activations are vectorised kernels instead (ActivationKernels.swift).

struct AddFunction: BinaryFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a + b } }
struct SubtractFunction: BinaryFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a - b } }
struct MultiplyFunction: BinaryFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a * b } }
struct DivideFunction: BinaryFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a / b } }
/// Returns its first argument: broadcasting a tensor is zipping it with itself through this.
struct FirstFunction: BinaryFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a } }

/// `f(x, s)` for a fixed right operand.
struct BindRight<F: BinaryFunction>: UnaryFunction {
    let f: F, s: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { f(x, s) }
}
/// `f(s, x)` for a fixed left operand.
struct BindLeft<F: BinaryFunction>: UnaryFunction {
    let f: F, s: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { f(s, x) }
}

struct AffineFunction: DifferentiableUnaryFunction {
    let scale: Float, shift: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { scale * x + shift }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { scale }
}
struct ExpFunction: DifferentiableUnaryFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { FastMath.exp(x) }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { y }
}
struct LogFunction: DifferentiableUnaryFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { logf(x) }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { 1 / x }
}
struct SqrtFunction: DifferentiableUnaryFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x.squareRoot() }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { 0.5 / y }
}
struct PowFunction: DifferentiableUnaryFunction {
    let p: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { powf(x, p) }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { p * powf(x, p - 1) }
}
struct ClampFunction: DifferentiableUnaryFunction {
    let lower: Float, upper: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { Swift.min(Swift.max(x, lower), upper) }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { x >= lower && x <= upper ? 1 : 0 }
}
struct SquareFunction: DifferentiableUnaryFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x * x }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { 2 * x }
}
