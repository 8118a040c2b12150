#if canImport(Glibc)
import Glibc
#endif

/// A pointwise activation in 16-lane form: what each activation implements once. `Activation`
/// (Ops/Activation.swift) turns it into the standalone op's loops and the batch-norm fused loops.
///
/// The derivative is taken from the input z or from the output y = f(z), whichever is cheaper:
/// ReLU's from z, ELU's from y (alpha e^z = y + alpha, with no exponential), sigmoid's and tanh's
/// from y. Callers keep only the tensor the derivative reads.
protocol ActivationKernel: Sendable {
    /// Whether `backward` reads the output y; otherwise it reads the input z and y may be anything.
    static var derivativeUsesOutput: Bool { get }
    /// f(z) for each lane.
    func forward(_ z: Vector16) -> Vector16
    /// g * f'(z) for each lane, where y = f(z).
    func backward(_ g: Vector16, input z: Vector16, output y: Vector16) -> Vector16
}

/// f(z) = z: plain batch normalization.
struct IdentityKernel: ActivationKernel {
    static var derivativeUsesOutput: Bool { false }
    @inline(__always) func forward(_ z: Vector16) -> Vector16 { z }
    @inline(__always) func backward(_ g: Vector16, input z: Vector16, output y: Vector16) -> Vector16 { g }
}

/// max(z, 0); NaN propagates.
struct ReLUKernel: ActivationKernel {
    static var derivativeUsesOutput: Bool { false }
    @inline(__always) func forward(_ z: Vector16) -> Vector16 { z.replacing(with: 0, where: z .<= 0) }
    @inline(__always) func backward(_ g: Vector16, input z: Vector16, output y: Vector16) -> Vector16 {
        g.replacing(with: 0, where: z .<= 0)
    }
}

/// z for z > 0, alpha (e^z - 1) otherwise. The derivative alpha e^z is y + alpha: backward reads
/// the saved output instead of evaluating the exponential again, which on 4-wide SSE (the
/// package's default target) costs more than streaming y from memory.
struct ELUKernel: ActivationKernel {
    static var derivativeUsesOutput: Bool { true }
    let alpha: Float
    @inline(__always) func forward(_ z: Vector16) -> Vector16 {
        let negative = (VectorMath.exp(z) - 1) * alpha
        return negative.replacing(with: z, where: z .> 0)
    }
    @inline(__always) func backward(_ g: Vector16, input z: Vector16, output y: Vector16) -> Vector16 {
        // y > 0 exactly when z > 0.
        let negative = g * (y + alpha)
        return negative.replacing(with: g, where: y .> 0)
    }
}

/// 1 / (1 + e^-z), with derivative y (1 - y).
struct SigmoidKernel: ActivationKernel {
    static var derivativeUsesOutput: Bool { true }
    @inline(__always) func forward(_ z: Vector16) -> Vector16 { 1 / (1 + VectorMath.exp(-z)) }
    @inline(__always) func backward(_ g: Vector16, input z: Vector16, output y: Vector16) -> Vector16 {
        g * (y * (1 - y))
    }
}

/// tanh(z) lane by lane through libm (no vector tanh here), with derivative 1 - y^2.
struct TanhKernel: ActivationKernel {
    static var derivativeUsesOutput: Bool { true }
    @inline(__always) func forward(_ z: Vector16) -> Vector16 {
        var y = Vector16()
        for i in 0..<16 { y[i] = tanhf(z[i]) }
        return y
    }
    @inline(__always) func backward(_ g: Vector16, input z: Vector16, output y: Vector16) -> Vector16 {
        g * (1 - y * y)
    }
}

/// The standalone activation loops: memory-bound passes, split over the threads above
/// `ElementwiseKernels.parallelThreshold` elements.
enum ActivationKernels {
    /// y = f(x).
    static func forward<A: ActivationKernel>(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                             _ count: Int, _ act: A) {
        Threads.parallelRanges(count, minimumChunk: ElementwiseKernels.parallelThreshold) { range in
            var i = range.lowerBound
            while i &+ 16 <= range.upperBound {
                VectorMath.store(act.forward(VectorMath.load(x + i)), y + i)
                i &+= 16
            }
            if i < range.upperBound {
                let r = range.upperBound &- i
                VectorMath.storePartial(act.forward(VectorMath.loadPartial(x + i, r)), y + i, r)
            }
        }
    }

    /// dx = g * f'(x), from the input x or the output y (the one the derivative does not read is
    /// not loaded; it may point anywhere valid).
    static func backward<A: ActivationKernel>(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                                              _ g: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                                              _ count: Int, _ act: A) {
        Threads.parallelRanges(count, minimumChunk: ElementwiseKernels.parallelThreshold) { range in
            var i = range.lowerBound
            while i &+ 16 <= range.upperBound {
                let xv = A.derivativeUsesOutput ? Vector16() : VectorMath.load(x + i)
                let yv = A.derivativeUsesOutput ? VectorMath.load(y + i) : Vector16()
                VectorMath.store(act.backward(VectorMath.load(g + i), input: xv, output: yv), dx + i)
                i &+= 16
            }
            if i < range.upperBound {
                let r = range.upperBound &- i
                let xv = A.derivativeUsesOutput ? Vector16() : VectorMath.loadPartial(x + i, r)
                let yv = A.derivativeUsesOutput ? VectorMath.loadPartial(y + i, r) : Vector16()
                VectorMath.storePartial(act.backward(VectorMath.loadPartial(g + i, r), input: xv, output: yv), dx + i, r)
            }
        }
    }
}

/// One activation's loops, specialised for its kernel when the table is built from a concrete
/// `ActivationKernel` inside this module, behind closures: the activation can be chosen at run time
/// (a model's configuration) without a switch over activations in each kernel. The closures run
/// once per op (the standalone loops) or once per range of planes (batch norm), never per element.
struct ActivationKernelTable: Sendable {
    /// Whether the backward loops read the forward output (else the input).
    let derivativeUsesOutput: Bool
    /// `ActivationKernels.forward`: (x, y, count).
    let forward: @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
    /// `ActivationKernels.backward`: (x, y, g, dx, count).
    let backward: @Sendable (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                             UnsafeMutablePointer<Float>, Int) -> Void
    /// `BatchNormKernels.normalize`: (x, y, layout, a, b).
    let normalize: @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Float>, BatchNormKernels.Layout,
                              [Float], [Float]) -> Void
    /// `BatchNormKernels.backwardSums`: (x, y, g, layout, parameters).
    let backwardSums: @Sendable (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                 BatchNormKernels.Layout, BatchNormKernels.ChannelParameters) -> ([Double], [Double])
    /// `BatchNormKernels.backwardInput`: (x, y, g, dx, layout, parameters).
    let backwardInput: @Sendable (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                  UnsafeMutablePointer<Float>, BatchNormKernels.Layout,
                                  BatchNormKernels.ChannelParameters) -> Void

    init<A: ActivationKernel>(_ act: A) {
        derivativeUsesOutput = A.derivativeUsesOutput
        forward = { ActivationKernels.forward($0, $1, $2, act) }
        backward = { ActivationKernels.backward($0, $1, $2, $3, $4, act) }
        normalize = { BatchNormKernels.normalize($0, $1, $2, a: $3, b: $4, act) }
        backwardSums = { BatchNormKernels.backwardSums($0, $1, $2, $3, $4, act) }
        backwardInput = { BatchNormKernels.backwardInput($0, $1, $2, $3, $4, $5, act) }
    }
}
