import Tensor
import XCTest

final class DropoutTests: XCTestCase {
    func testKeepRateAndScaling() {
        let x = randomTensor([4, 8, 128, 128], seed: 1, range: 0.5...1.5)
        for p: Float in [0.1, 0.5, 0.8] {
            var rng = SeededGenerator(seed: 7)
            let y = dropout(x, probability: p, generator: &rng)
            let xs = x.scalars, ys = y.scalars
            var kept = 0
            for i in 0..<xs.count where ys[i] != 0 {
                kept += 1
                XCTAssertEqual(ys[i], xs[i] * (1 / (1 - p)), accuracy: 1e-6 * ys[i])
            }
            let rate = Double(kept) / Double(xs.count)
            // 524288 samples: the standard error of the rate is below 7e-4.
            XCTAssertEqual(rate, 1 - Double(p), accuracy: 4e-3, "p = \(p)")
        }
    }

    func testSeededDeterminismAndGeneratorAdvance() {
        let x = randomTensor([3, 5, 17, 19], seed: 2)
        var a = SeededGenerator(seed: 11), b = SeededGenerator(seed: 11)
        let ya = dropout(x, probability: 0.5, generator: &a)
        let yb = dropout(x, probability: 0.5, generator: &b)
        XCTAssertEqual(ya.scalars, yb.scalars)
        let ya2 = dropout(x, probability: 0.5, generator: &a)
        XCTAssertNotEqual(ya.scalars, ya2.scalars, "the generator advances between calls")
        var c = SeededGenerator(seed: 12)
        XCTAssertNotEqual(ya.scalars, dropout(x, probability: 0.5, generator: &c).scalars)
    }

    func testExtremeProbabilities() {
        let x = randomTensor([2, 3, 4, 5], seed: 3)
        var rng = SeededGenerator(seed: 1)
        XCTAssertEqual(dropout(x, probability: 0, generator: &rng).scalars, x.scalars)
        XCTAssertEqual(dropout(x, probability: 1, generator: &rng).scalars, [Float](repeating: 0, count: x.count))
    }

    func testGradientIsTheMaskTimesScale() {
        let x = randomTensor([2, 3, 9, 11], seed: 4, range: 0.5...1.5)
        checkGradients([x]) { xs in
            var rng = SeededGenerator(seed: 5)
            return dropout(xs[0], probability: 0.3, generator: &rng)
        }
        let leaf = x.requiringGradient()
        var rng = SeededGenerator(seed: 6)
        let y = dropout(leaf, probability: 0.25, generator: &rng)
        y.sum().backward()
        let grad = leaf.gradient!.scalars, ys = y.scalars
        for i in 0..<ys.count { XCTAssertEqual(grad[i], ys[i] == 0 ? 0 : 1 / 0.75, accuracy: 1e-6) }
    }

    func testResultsIndependentOfThreadCount() {
        let x = randomTensor([2, 16, 64, 64], seed: 8)
        let saved = Threads.count
        defer { Threads.count = saved }
        var results: [[Float]] = []
        for threads in [1, 2] {
            Threads.count = threads
            var rng = SeededGenerator(seed: 9)
            results.append(dropout(x, probability: 0.4, generator: &rng).scalars)
        }
        XCTAssertEqual(results[0], results[1])
    }
}
