import Tensor
import XCTest

/// Central finite-difference gradient check.
///
/// `f` maps the inputs to any tensor; the check reduces it to the scalar `sum(f(x) * R)` with a fixed
/// random projection `R`, so every output element's gradient matters. The numerical derivative of
/// each input element is `(L(x + h) - L(x - h)) / 2h`, formed in Double from Double-accumulated sums.
/// Analytical gradients come from one `backward()`.
func checkGradients(_ inputs: [Tensor], step: Float = 1e-2, relativeTolerance: Double = 2e-2,
                    absoluteTolerance: Double = 2e-3, seed: UInt64 = 7,
                    file: StaticString = #filePath, line: UInt = #line,
                    _ f: ([Tensor]) -> Tensor) {
    var rng = SeededGenerator(seed: seed)
    let probeOutput = withoutGradients { f(inputs) }
    let projection = Tensor.randomUniform(probeOutput.shape, lowerBound: -1, upperBound: 1, generator: &rng)
    func loss(_ xs: [Tensor]) -> Double {
        let y = withoutGradients { f(xs) }
        var acc = 0.0
        let p = projection.scalars, v = y.scalars
        for i in 0..<v.count { acc += Double(v[i]) * Double(p[i]) }
        return acc
    }
    let leaves = inputs.map { $0.requiringGradient() }
    let y = f(leaves)
    (y * projection).sum().backward()
    for (index, input) in inputs.enumerated() {
        guard let analytic = leaves[index].gradient else {
            XCTFail("input \(index): no gradient reached it", file: file, line: line)
            continue
        }
        XCTAssertEqual(analytic.shape, input.shape, "input \(index): gradient shape", file: file, line: line)
        var worst = 0.0, worstAt = -1
        var numericWorst = 0.0, analyticWorst = 0.0
        for e in 0..<input.count {
            var plus = inputs, minus = inputs
            plus[index].withUnsafeMutableBufferPointer { $0[e] += step }
            minus[index].withUnsafeMutableBufferPointer { $0[e] -= step }
            let numeric = (loss(plus) - loss(minus)) / (2 * Double(step))
            let a = Double(analytic.scalars[e])
            let excess = abs(numeric - a) - (absoluteTolerance + relativeTolerance * abs(numeric))
            if excess > worst { worst = excess; worstAt = e; numericWorst = numeric; analyticWorst = a }
        }
        XCTAssertTrue(worstAt < 0, "input \(index) shape \(input.shape): element \(worstAt) numeric \(numericWorst) vs analytic \(analyticWorst)",
                      file: file, line: line)
    }
}

/// A random tensor for tests.
func randomTensor(_ shape: [Int], seed: UInt64, range: ClosedRange<Float> = -1...1) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    return Tensor.randomUniform(shape, lowerBound: range.lowerBound, upperBound: range.upperBound, generator: &rng)
}
