import Tensor
import XCTest

final class PoolingTests: XCTestCase {
    /// Plain reference: output values and, per output, the flat input index of the first maximum.
    func referenceMaxPool(_ x: Tensor, k: Int, s: Int) -> (Tensor, [Int]) {
        let (n, c, h, w) = x.shape4("reference")
        let oh = (h - k) / s + 1, ow = (w - k) / s + 1
        let v = x.scalars
        var out = [Float](), winners = [Int]()
        for i in 0..<n { for ch in 0..<c { for oy in 0..<oh { for ox in 0..<ow {
            var best = -Float.infinity, at = -1
            for ky in 0..<k { for kx in 0..<k {
                let idx = ((i * c + ch) * h + oy * s + ky) * w + ox * s + kx
                if at < 0 || v[idx] > best { best = v[idx]; at = idx }
            } }
            out.append(best); winners.append(at)
        } } } }
        return (Tensor(shape: [n, c, oh, ow], scalars: out), winners)
    }

    /// Distinct values at least 0.05 apart in a shuffled order: no ties, even after a
    /// finite-difference step.
    func distinctTensor(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        let count = shape.reduce(1, *)
        let values = (0..<count).map { Float($0) * 0.05 - Float(count) * 0.025 }.shuffled(using: &rng)
        return Tensor(shape: shape, scalars: values)
    }

    let cases: [(shape: [Int], k: Int, s: Int)] = [
        ([2, 3, 8, 6], 2, 2), ([2, 3, 7, 9], 2, 2), ([3, 2, 9, 11], 3, 2), ([2, 2, 8, 8], 3, 2),
        ([1, 2, 7, 5], 3, 1), ([2, 1, 6, 7], 2, 1), ([2, 2, 10, 9], 3, 3), ([1, 1, 5, 5], 5, 5),
        ([2, 3, 37, 35], 2, 2),
        // wide enough for the 16-output vector paths of the general kernel (strides 1 and 2)
        ([2, 2, 9, 41], 3, 2), ([1, 2, 5, 37], 3, 1), ([1, 2, 6, 40], 4, 2), ([2, 1, 7, 70], 3, 3),
    ]

    func testForwardAndBackwardMatchReference() {
        for (index, testCase) in cases.enumerated() {
            let x = randomTensor(testCase.shape, seed: UInt64(10 + index))
            let (expected, winners) = referenceMaxPool(x, k: testCase.k, s: testCase.s)
            let leaf = x.requiringGradient()
            let y = maxPool2d(leaf, kernelSize: testCase.k, stride: testCase.s)
            XCTAssertEqual(y.shape, expected.shape, "\(testCase)")
            XCTAssertEqual(y.scalars, expected.scalars, "\(testCase)")
            XCTAssertEqual(withoutGradients { maxPool2d(x, kernelSize: testCase.k, stride: testCase.s) }.scalars,
                           expected.scalars, "no-grad path \(testCase)")
            let seed = randomTensor(y.shape, seed: 99)
            y.backward(seed: seed)
            var expectedGradient = [Float](repeating: 0, count: x.count)
            for (o, at) in winners.enumerated() { expectedGradient[at] += seed.scalars[o] }
            XCTAssertEqual(leaf.gradient?.scalars, expectedGradient, "\(testCase)")
        }
    }

    func testDefaultStrideIsKernelAndFloorForOddSizes() {
        let x = randomTensor([1, 1, 5, 7], seed: 3)
        XCTAssertEqual(maxPool2d(x).shape, [1, 1, 2, 3])
        XCTAssertEqual(maxPool2d(x, kernelSize: 3).shape, [1, 1, 1, 2])
        XCTAssertEqual(maxPool2d(x, kernelSize: 3, stride: 2).shape, [1, 1, 2, 3])
    }

    func testTiesSendGradientToFirstMaximum() {
        let x = Tensor(repeating: 1, shape: [1, 1, 4, 4]).requiringGradient()
        maxPool2d(x).sum().backward()
        XCTAssertEqual(x.gradient?.scalars, [1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0])
        let z = Tensor(repeating: 2, shape: [1, 1, 3, 3]).requiringGradient()
        maxPool2d(z, kernelSize: 3, stride: 1).sum().backward()
        XCTAssertEqual(z.gradient?.scalars, [1, 0, 0, 0, 0, 0, 0, 0, 0])
        // Vector paths: every window's top-left element wins.
        for (k, s) in [(2, 2), (3, 2), (3, 1)] {
            let wide = Tensor(repeating: 3, shape: [1, 1, 3, 40]).requiringGradient()
            let y = maxPool2d(wide, kernelSize: k, stride: s)
            y.sum().backward()
            var expected = [Float](repeating: 0, count: 120)
            for oy in 0..<y.shape[2] { for ox in 0..<y.shape[3] { expected[oy * s * 40 + ox * s] += 1 } }
            XCTAssertEqual(wide.gradient?.scalars, expected, "k \(k) s \(s)")
        }
    }

    func testNaNPropagates() {
        var x = randomTensor([1, 1, 4, 4], seed: 5)
        x[0, 0, 1, 1] = .nan
        let y = maxPool2d(x)
        XCTAssertTrue(y[0, 0, 0, 0].isNaN)
        XCTAssertFalse(y[0, 0, 0, 1].isNaN)
        XCTAssertTrue(maxPool2d(x, kernelSize: 3, stride: 1)[0, 0, 0, 0].isNaN)
        // Wide rows take the 16-window vector path.
        var wide = randomTensor([1, 1, 2, 40], seed: 6)
        wide[0, 0, 1, 7] = .nan
        let pooled = maxPool2d(wide).scalars
        XCTAssertEqual(pooled.indices.filter { pooled[$0].isNaN }, [3])
    }

    func testGradients() {
        checkGradients([distinctTensor([2, 2, 5, 7], seed: 1)]) { maxPool2d($0[0]) }
        checkGradients([distinctTensor([2, 2, 7, 7], seed: 2)]) { maxPool2d($0[0], kernelSize: 3, stride: 2) }
        checkGradients([distinctTensor([1, 1, 5, 37], seed: 3)]) { maxPool2d($0[0], kernelSize: 3, stride: 2) }
        checkGradients([distinctTensor([1, 1, 2, 36], seed: 4)]) { maxPool2d($0[0]) }
    }

    func testResultsIndependentOfThreadCount() {
        let x = randomTensor([2, 16, 67, 66], seed: 4)
        let g = randomTensor([2, 16, 33, 33], seed: 5)
        func run() -> ([Float], [Float]) {
            let leaf = x.requiringGradient()
            let y = maxPool2d(leaf)
            y.backward(seed: g)
            return (y.scalars, leaf.gradient!.scalars)
        }
        let saved = Threads.count
        defer { Threads.count = saved }
        Threads.count = 1
        let one = run()
        Threads.count = 2
        let two = run()
        XCTAssertEqual(one.0, two.0)
        XCTAssertEqual(one.1, two.1)
    }
}
