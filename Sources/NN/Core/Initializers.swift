/// How a layer fills a new weight tensor. Every random initializer draws from an `inout
/// SeededGenerator`, so the same seed gives the same network on every machine.
///
/// Fans follow PyTorch's `_calculate_fan_in_and_fan_out`: for a weight of shape
/// `[a, b, k1, k2, ...]`, `fanIn = b * k1 * k2 ...` and `fanOut = a * k1 * k2 ...`. For a convolution
/// weight `[Cout, Cin, kh, kw]` that is `Cin*kh*kw` in and `Cout*kh*kw` out; a transposed convolution's
/// `[Cin, Cout, kh, kw]` gets `Cout*kh*kw` as fan-in, as in PyTorch and Keras.
public enum Initializer: Sendable, Equatable {
    /// He (Kaiming) normal: N(0, gain² / fanIn). The default gain `sqrt(2)` suits ReLU/ELU networks.
    case heNormal(gain: Float = 1.4142135)
    /// Glorot (Xavier) uniform: U(-a, a) with `a = gain * sqrt(6 / (fanIn + fanOut))`.
    case glorotUniform(gain: Float = 1)
    /// All zeros.
    case zeros
    /// Every element equal to the given value.
    case constant(Float)

    /// A new tensor of `shape` filled by this initializer.
    public func makeTensor(shape: [Int], generator: inout SeededGenerator) -> Tensor {
        let (fanIn, fanOut) = Initializer.fans(of: shape)
        switch self {
        case .heNormal(let gain):
            let std = gain / Float(max(fanIn, 1)).squareRoot()
            return Tensor.randomNormal(shape, mean: 0, standardDeviation: std, generator: &generator)
        case .glorotUniform(let gain):
            let limit = gain * (6 / Float(max(fanIn + fanOut, 1))).squareRoot()
            return Tensor.randomUniform(shape, lowerBound: -limit, upperBound: limit, generator: &generator)
        case .zeros:
            return Tensor.zeros(shape)
        case .constant(let value):
            return Tensor(repeating: value, shape: shape)
        }
    }

    /// `(fanIn, fanOut)` of a weight shape, as PyTorch computes them (a rank-1 shape counts as both).
    public static func fans(of shape: [Int]) -> (fanIn: Int, fanOut: Int) {
        switch shape.count {
        case 0: return (1, 1)
        case 1: return (shape[0], shape[0])
        default:
            let receptive = shape.dropFirst(2).reduce(1, *)
            return (shape[1] * receptive, shape[0] * receptive)
        }
    }
}
