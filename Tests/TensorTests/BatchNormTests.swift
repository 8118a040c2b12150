import Foundation
import Tensor
import XCTest

final class BatchNormTests: XCTestCase {
    /// Every activation (ActivationTests' table): each runs through the fused kernels below.
    let activations = referenceActivations.map(\.activation)

    /// Per-channel mean and biased variance over N, H, W, in Double (two passes).
    func referenceStatistics(_ x: Tensor) -> (mean: [Double], variance: [Double]) {
        let (n, c, h, w) = x.shape4("reference")
        let v = x.scalars, hw = h * w
        var mean = [Double](repeating: 0, count: c), variance = [Double](repeating: 0, count: c)
        for ch in 0..<c {
            var s = 0.0
            for i in 0..<n { for j in 0..<hw { s += Double(v[(i * c + ch) * hw + j]) } }
            mean[ch] = s / Double(n * hw)
            var q = 0.0
            for i in 0..<n { for j in 0..<hw { let d = Double(v[(i * c + ch) * hw + j]) - mean[ch]; q += d * d } }
            variance[ch] = q / Double(n * hw)
        }
        return (mean, variance)
    }

    func referenceNormalize(_ x: Tensor, scale: Tensor, offset: Tensor, mean: [Double], variance: [Double],
                            epsilon: Double, activation: Activation) -> Tensor {
        let (n, c, h, w) = x.shape4("reference")
        let v = x.scalars, hw = h * w
        let activate = reference(of: activation)
        var out = [Float](repeating: 0, count: v.count)
        for i in 0..<n { for ch in 0..<c { for j in 0..<hw {
            let idx = (i * c + ch) * hw + j
            let z = Double(scale.scalars[ch]) * (Double(v[idx]) - mean[ch]) / (variance[ch] + epsilon).squareRoot()
                + Double(offset.scalars[ch])
            out[idx] = Float(activate(z))
        } } }
        return Tensor(shape: x.shape, scalars: out)
    }

    /// Batch norm composed of plain differentiable ops, then the standalone activation op:
    /// an independent oracle for the fused op's values and gradients.
    func unfusedBatchNorm(_ x: Tensor, _ scale: Tensor, _ offset: Tensor, epsilon: Float,
                          activation: Activation, statistics: (Tensor, Tensor)? = nil) -> Tensor {
        let c = x.shape[1]
        let mean: Tensor, variance: Tensor
        if let statistics {
            mean = statistics.0.reshaped(to: [1, c, 1, 1]); variance = statistics.1.reshaped(to: [1, c, 1, 1])
        } else {
            mean = x.mean(alongAxes: [0, 2, 3], keepingDimensions: true)
            let centered = x - mean
            variance = (centered * centered).mean(alongAxes: [0, 2, 3], keepingDimensions: true)
        }
        let normalized = (x - mean) / (variance + epsilon).sqrt()
        let z = normalized * scale.reshaped(to: [1, c, 1, 1]) + offset.reshaped(to: [1, c, 1, 1])
        return z.activated(activation)
    }

    let shapes: [[Int]] = [[3, 4, 5, 7], [2, 3, 67, 65], [1, 2, 1, 17], [4, 1, 3, 3]]

    func testTrainingForwardMatchesReference() {
        for (index, shape) in shapes.enumerated() {
            let c = shape[1]
            let x = randomTensor(shape, seed: UInt64(index), range: -2...3)
            let scale = randomTensor([c], seed: 100 + UInt64(index), range: 0.5...2)
            let offset = randomTensor([c], seed: 200 + UInt64(index))
            let (mean, variance) = referenceStatistics(x)
            for activation in activations {
                let (y, m, v) = batchNormTraining(x, scale: scale, offset: offset, epsilon: 1e-3, activation: activation)
                let expected = referenceNormalize(x, scale: scale, offset: offset, mean: mean, variance: variance,
                                                  epsilon: 1e-3, activation: activation)
                XCTAssertLessThan(y.maxAbsoluteDifference(to: expected), 2e-5, "\(shape) \(activation)")
                for ch in 0..<c {
                    XCTAssertEqual(Double(m.scalars[ch]), mean[ch], accuracy: 1e-6, "\(shape)")
                    XCTAssertEqual(Double(v.scalars[ch]), variance[ch], accuracy: 1e-6 * max(1, variance[ch]), "\(shape)")
                }
            }
        }
    }

    func testInferenceForwardMatchesReference() {
        for (index, shape) in shapes.enumerated() {
            let c = shape[1]
            let x = randomTensor(shape, seed: UInt64(index), range: -2...3)
            let scale = randomTensor([c], seed: 10, range: 0.5...2), offset = randomTensor([c], seed: 11)
            let mean = randomTensor([c], seed: 12), variance = randomTensor([c], seed: 13, range: 0.2...3)
            for activation in activations {
                let y = batchNormInference(x, scale: scale, offset: offset, mean: mean, variance: variance,
                                           activation: activation)
                let expected = referenceNormalize(x, scale: scale, offset: offset, mean: mean.scalars.map(Double.init),
                                                  variance: variance.scalars.map(Double.init), epsilon: 1e-5,
                                                  activation: activation)
                XCTAssertLessThan(y.maxAbsoluteDifference(to: expected), 2e-5, "\(shape) \(activation)")
            }
        }
    }

    /// 2 x 262144 values per channel around 1000: naive Float sums of x and x^2 lose the variance
    /// entirely; the shifted, blocked Float/Double accumulation must match a Double reference.
    func testStatisticsAccurateForLargeMeanOver262kPixels() {
        var rng = SeededGenerator(seed: 42)
        let x = Tensor.randomNormal([2, 2, 512, 256], mean: 1000, standardDeviation: 0.5, generator: &rng)
        let (mean, variance) = referenceStatistics(x)
        let (y, m, v) = batchNormTraining(x, scale: Tensor.ones([2]), offset: Tensor.zeros([2]))
        for ch in 0..<2 {
            XCTAssertEqual(Double(m.scalars[ch]), mean[ch], accuracy: 1e-4)
            XCTAssertEqual(Double(v.scalars[ch]), variance[ch], accuracy: 1e-4 * variance[ch])
        }
        // The normalized output has mean 0 and variance 1 up to Float rounding of x near 1000.
        let (outMean, outVariance) = referenceStatistics(y)
        for ch in 0..<2 {
            XCTAssertEqual(outMean[ch], 0, accuracy: 1e-3)
            XCTAssertEqual(outVariance[ch], 1, accuracy: 1e-3)
        }
    }

    func testFusedEqualsUnfusedValuesAndGradients() {
        let shape = [2, 3, 6, 5]
        let x = randomTensor(shape, seed: 1, range: -2...2)
        let scale = randomTensor([3], seed: 2, range: 0.5...1.5), offset = randomTensor([3], seed: 3)
        let projection = randomTensor(shape, seed: 4)
        for training in [true, false] {
            let statistics = (randomTensor([3], seed: 5), randomTensor([3], seed: 6, range: 0.5...2))
            for activation in activations {
                func gradients(fused: Bool) -> (Tensor, [Tensor]) {
                    let leaves = [x, scale, offset].map { $0.requiringGradient() }
                    let y: Tensor
                    switch (fused, training) {
                    case (true, true):
                        y = batchNormTraining(leaves[0], scale: leaves[1], offset: leaves[2], activation: activation).output
                    case (true, false):
                        y = batchNormInference(leaves[0], scale: leaves[1], offset: leaves[2], mean: statistics.0,
                                               variance: statistics.1, activation: activation)
                    case (false, _):
                        y = unfusedBatchNorm(leaves[0], leaves[1], leaves[2], epsilon: 1e-5, activation: activation,
                                             statistics: training ? nil : statistics)
                    }
                    (y * projection).sum().backward()
                    return (y, leaves.map { $0.gradient! })
                }
                let (fusedY, fusedGradients) = gradients(fused: true)
                let (plainY, plainGradients) = gradients(fused: false)
                let label = "training \(training) \(activation)"
                XCTAssertLessThan(fusedY.maxAbsoluteDifference(to: plainY), 1e-5, label)
                for (name, (a, b)) in zip(["input", "scale", "offset"], zip(fusedGradients, plainGradients)) {
                    XCTAssertLessThan(a.maxAbsoluteDifference(to: b), 1e-4, "\(label) d\(name)")
                }
            }
        }
    }

    func testTrainingGradientsThroughStatistics() {
        let x = randomTensor([2, 3, 3, 4], seed: 7, range: -2...2)
        let scale = randomTensor([3], seed: 8, range: 0.5...1.5), offset = randomTensor([3], seed: 9, range: -0.5...0.5)
        for activation in activations {
            checkGradients([x, scale, offset], step: 1e-3) {
                batchNormTraining($0[0], scale: $0[1], offset: $0[2], activation: activation).output
            }
        }
    }

    func testInferenceGradients() {
        let x = randomTensor([2, 3, 3, 4], seed: 17, range: -2...2)
        let scale = randomTensor([3], seed: 18, range: 0.5...1.5), offset = randomTensor([3], seed: 19, range: -0.5...0.5)
        let mean = randomTensor([3], seed: 20, range: -0.5...0.5), variance = randomTensor([3], seed: 21, range: 0.5...2)
        for activation in activations {
            checkGradients([x, scale, offset], step: 1e-3) {
                batchNormInference($0[0], scale: $0[1], offset: $0[2], mean: mean, variance: variance,
                                   activation: activation)
            }
        }
    }

    func testResultsIndependentOfThreadCount() {
        let shape = [2, 8, 70, 66]
        let x = randomTensor(shape, seed: 30, range: -2...2)
        let scale = randomTensor([8], seed: 31), offset = randomTensor([8], seed: 32)
        let g = randomTensor(shape, seed: 33)
        func run(_ activation: Activation) -> [[Float]] {
            let leaves = [x, scale, offset].map { $0.requiringGradient() }
            let (y, m, v) = batchNormTraining(leaves[0], scale: leaves[1], offset: leaves[2], activation: activation)
            y.backward(seed: g)
            return [y.scalars, m.scalars, v.scalars] + leaves.map { $0.gradient!.scalars }
        }
        let saved = Threads.count
        defer { Threads.count = saved }
        for activation in activations {
            Threads.count = 1
            let one = run(activation)
            Threads.count = 2
            let two = run(activation)
            XCTAssertEqual(one, two, "\(activation)")
        }
    }
}

/// Two threads standing in for two processes: `sum` returns, on both, the element-wise sum of what
/// each passed (the all-reduce of synchronized batch norm).
final class ThreadPairSum: @unchecked Sendable {
    private let condition = NSCondition()
    private var slots: [[Double]] = [[], []]
    private var arrived = 0, departed = 0, phase = 0

    func sum(_ values: inout [Double], rank: Int) {
        condition.lock()
        defer { condition.unlock() }
        slots[rank] = values
        arrived += 1
        wait(until: arrived == 2)
        values = zip(slots[0], slots[1]).map(+)
        departed += 1
        // Nobody deposits the next round before both have read this one.
        if departed == 2 { arrived = 0; departed = 0 }
        wait(until: departed == 0)
    }

    /// A barrier of the two threads: the second to arrive (for which `last` holds) wakes the first.
    private func wait(until last: Bool) {
        let entered = phase
        if last {
            phase += 1
            condition.broadcast()
        } else {
            while phase == entered { condition.wait() }
        }
    }
}

final class SynchronizedBatchNormTests: XCTestCase {
    /// Two halves of a batch normalized on two "processes" with synchronized statistics give the
    /// output and input gradient of one batch norm over the whole batch; the scale and offset
    /// gradients of the halves add up to the whole's.
    func testHalvesWithSynchronizedStatisticsEqualTheWholeBatch() {
        let whole = randomTensor([4, 3, 5, 6], seed: 11, range: -2...2)
        let scale = randomTensor([3], seed: 12, range: 0.5...1.5), offset = randomTensor([3], seed: 13)
        let projection = randomTensor([4, 3, 5, 6], seed: 14)
        for activation in [Activation.identity, .elu(), .relu] {
            let leaves = [whole, scale, offset].map { $0.requiringGradient() }
            let reference = batchNormTraining(leaves[0], scale: leaves[1], offset: leaves[2], activation: activation)
            (reference.output * projection).sum().backward()

            let pair = ThreadPairSum()
            var results: [(output: Tensor, mean: Tensor, input: Tensor, scale: Tensor, offset: Tensor)?] = [nil, nil]
            let lock = NSLock()
            DispatchQueue.concurrentPerform(iterations: 2) { rank in
                let part = 2 * rank..<(2 * rank + 2)
                let x = whole.slice(alongAxis: 0, part).requiringGradient()
                let s = scale.requiringGradient(), o = offset.requiringGradient()
                let r = batchNormTraining(x, scale: s, offset: o, activation: activation,
                                          synchronizing: { pair.sum(&$0, rank: rank) })
                (r.output * projection.slice(alongAxis: 0, part)).sum().backward()
                lock.lock()
                results[rank] = (r.output, r.mean, x.gradient!, s.gradient!, o.gradient!)
                lock.unlock()
            }
            let halves = results.map { $0! }
            let label = "\(activation)"
            let output = Tensor.concatenate([halves[0].output, halves[1].output], alongAxis: 0)
            XCTAssertLessThan(output.maxAbsoluteDifference(to: reference.output), 1e-5, label)
            XCTAssertLessThan(halves[1].mean.maxAbsoluteDifference(to: reference.mean), 1e-6, label)
            let input = Tensor.concatenate([halves[0].input, halves[1].input], alongAxis: 0)
            XCTAssertLessThan(input.maxAbsoluteDifference(to: leaves[0].gradient!), 1e-4, "\(label) input gradient")
            XCTAssertLessThan((halves[0].scale + halves[1].scale).maxAbsoluteDifference(to: leaves[1].gradient!), 1e-4, label)
            XCTAssertLessThan((halves[0].offset + halves[1].offset).maxAbsoluteDifference(to: leaves[2].gradient!), 1e-4, label)
        }
    }
}
