/// A pointwise activation function. One value serves every place an activation runs: the
/// standalone differentiable op (`x.activated(.relu)`), the pass fused into batch norm
/// (`batchNormTraining(_:scale:offset:epsilon:activation:)`, NN's `BatchNorm2d`) and NN's
/// `ActivationLayer`.
///
/// ```swift
/// let y = x.activated(.elu(alpha: 1))               // the same as x.elu()
/// let z = bn(conv(x), activation: .relu)            // normalize and activate in one pass
/// ```
///
/// Each activation is one 16-lane kernel with its derivative (`ActivationKernel`,
/// Kernels/ActivationKernels.swift); this value carries the loops specialised for it, so a model can
/// pick its activation at run time. Adding one: docs/ADDING_AN_OP.md.
public struct Activation: Sendable, Equatable, CustomStringConvertible {
    /// The function's name ("relu", "elu", ...), also the tape op's name in error messages.
    public let name: String
    /// Parameter values (ELU's alpha), in `description` order; part of equality.
    let arguments: [Float]
    /// Labels of `arguments`, for `description`.
    let argumentLabels: [String]
    /// The specialised loops.
    let kernels: ActivationKernelTable

    init<K: ActivationKernel>(_ name: String, _ kernel: K, arguments: KeyValuePairs<String, Float> = [:]) {
        self.name = name
        self.arguments = arguments.map(\.value)
        argumentLabels = arguments.map(\.key)
        kernels = ActivationKernelTable(kernel)
    }

    /// The name with its parameters, e.g. "elu(alpha: 0.5)".
    public var description: String {
        guard !arguments.isEmpty else { return name }
        return "\(name)(" + zip(argumentLabels, arguments).map { "\($0): \($1)" }.joined(separator: ", ") + ")"
    }

    /// Same function and parameters.
    public static func == (a: Activation, b: Activation) -> Bool { a.name == b.name && a.arguments == b.arguments }

    /// Whether the backward pass reads the forward output (otherwise the input): what an op keeps for it.
    var derivativeUsesOutput: Bool { kernels.derivativeUsesOutput }
}

extension Activation {
    /// f(x) = x: batch norm without an activation. As a standalone op it returns its input.
    public static let identity = Activation("identity", IdentityKernel())

    /// max(x, 0). NaN propagates, as in PyTorch.
    public static let relu = Activation("relu", ReLUKernel())

    /// Exponential linear unit: x for x > 0, alpha * (e^x - 1) otherwise (within alpha * 2e-7 of the
    /// exact value, see `FastMath.exp`). The backward pass keeps only the output: the derivative is
    /// y + alpha where y <= 0.
    public static func elu(alpha: Float = 1) -> Activation { Activation("elu", ELUKernel(alpha: alpha), arguments: ["alpha": alpha]) }

    /// The logistic function 1 / (1 + e^-x).
    public static let sigmoid = Activation("sigmoid", SigmoidKernel())

    /// Hyperbolic tangent.
    public static let tanh = Activation("tanh", TanhKernel())

    /// One instance of every activation above: the tests check each against a reference.
    static let all: [Activation] = [.identity, .relu, .elu(alpha: 1), .sigmoid, .tanh]
}

extension Tensor {
    /// `activation` applied elementwise; differentiable. `.identity` returns the tensor itself.
    public func activated(_ activation: Activation) -> Tensor {
        if activation == .identity { return self }
        let kernels = activation.kernels
        return pointwise(activation.name, forward: .activationForward, backward: .activationBackward,
                         keeping: kernels.derivativeUsesOutput ? .output : .input,
                         kernels.forward, derivative: kernels.backward)
    }

    /// max(x, 0) elementwise (`Activation.relu`).
    public func relu() -> Tensor { activated(.relu) }
    /// Exponential linear unit elementwise: x for x > 0, alpha * (e^x - 1) otherwise (`Activation.elu(alpha:)`).
    public func elu(alpha: Float = 1) -> Tensor { activated(.elu(alpha: alpha)) }
    /// The logistic function 1 / (1 + e^-x) elementwise (`Activation.sigmoid`).
    public func sigmoid() -> Tensor { activated(.sigmoid) }
    /// Hyperbolic tangent elementwise (`Activation.tanh`).
    public func tanh() -> Tensor { activated(.tanh) }
}
