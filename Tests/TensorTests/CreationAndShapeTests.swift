import Tensor
import XCTest

final class CreationAndShapeTests: XCTestCase {
    func testCreation() {
        XCTAssertEqual(Tensor.zeros([2, 2]).scalars, [0, 0, 0, 0])
        XCTAssertEqual(Tensor.ones([3]).scalars, [1, 1, 1])
        XCTAssertEqual(Tensor(repeating: 2.5, shape: [1, 2]).scalars, [2.5, 2.5])
        XCTAssertEqual(Tensor(3).shape, [])
        XCTAssertEqual(Tensor(3).scalar, 3)
        let t = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(t[1, 2], 6)
        XCTAssertEqual(t[0, 1], 2)
    }

    func testSeededRandomIsReproducibleAndDistributed() {
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42), c = SeededGenerator(seed: 43)
        let x = Tensor.randomNormal([10000], generator: &a)
        let y = Tensor.randomNormal([10000], generator: &b)
        let z = Tensor.randomNormal([10000], generator: &c)
        XCTAssertEqual(x.scalars, y.scalars)
        XCTAssertNotEqual(x.scalars, z.scalars)
        let mean = x.mean().scalar
        let variance = ((x - mean) * (x - mean)).mean().scalar
        XCTAssertEqual(mean, 0, accuracy: 0.05)
        XCTAssertEqual(variance, 1, accuracy: 0.05)
        var u = SeededGenerator(seed: 1)
        let uniform = Tensor.randomUniform([10000], lowerBound: 2, upperBound: 4, generator: &u)
        XCTAssertGreaterThanOrEqual(uniform.scalars.min()!, 2)
        XCTAssertLessThan(uniform.scalars.max()!, 4)
        XCTAssertEqual(uniform.mean().scalar, 3, accuracy: 0.05)
    }

    func testCopyOnWrite() {
        let a = Tensor(shape: [2], scalars: [1, 2])
        var b = a
        b[0] = 10
        XCTAssertEqual(a.scalars, [1, 2])
        XCTAssertEqual(b.scalars, [10, 2])
    }

    func testReshapeSqueezeUnsqueeze() {
        let t = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(t.reshaped(to: [3, -1]).shape, [3, 2])
        XCTAssertEqual(t.expandingShape(at: 0).shape, [1, 2, 3])
        XCTAssertEqual(t.expandingShape(at: -1).shape, [2, 3, 1])
        XCTAssertEqual(t.expandingShape(at: 1).squeezingShape().shape, [2, 3])
        checkGradients([randomTensor([2, 3], seed: 1)]) { $0[0].reshaped(to: [6]).expandingShape(at: 1) * 2 }
    }

    func testPermuteMatchesReference() {
        let x = randomTensor([2, 3, 4], seed: 3)
        let y = x.permuted([2, 0, 1])
        XCTAssertEqual(y.shape, [4, 2, 3])
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 { XCTAssertEqual(y[k, i, j], x[i, j, k]) } } }
        XCTAssertEqual(x.transposed().shape, [2, 4, 3])
        checkGradients([x]) { $0[0].permuted([2, 0, 1]) }
    }

    func testSliceCropConcatenate() {
        let x = Tensor(shape: [1, 1, 4, 4], scalars: (0..<16).map(Float.init))
        XCTAssertEqual(x.slice(alongAxis: 2, 1..<3).scalars, [4, 5, 6, 7, 8, 9, 10, 11])
        XCTAssertEqual(x.centerCropped(height: 2, width: 2).scalars, [5, 6, 9, 10])
        let a = randomTensor([2, 2, 3], seed: 1), b = randomTensor([2, 1, 3], seed: 2)
        let c = Tensor.concatenate([a, b], alongAxis: 1)
        XCTAssertEqual(c.shape, [2, 3, 3])
        XCTAssertEqual(c.slice(alongAxis: 1, 0..<2).scalars, a.scalars)
        XCTAssertEqual(c.slice(alongAxis: 1, 2..<3).scalars, b.scalars)
        checkGradients([a, b]) { Tensor.concatenate([$0[0], $0[1]], alongAxis: 1) }
        checkGradients([randomTensor([1, 2, 5, 6], seed: 4)]) { $0[0].centerCropped(height: 3, width: 2) }
    }

    /// Big enough that concatenation, slicing and the slice's backward copy in pieces on two
    /// threads (`CopyKernels`): every element checked against index arithmetic.
    func testLargeConcatenateAndSliceOnTwoThreads() {
        let a = randomTensor([3, 16, 100, 100], seed: 5), b = randomTensor([3, 8, 100, 100], seed: 6)
        let plane = 100 * 100
        let c = withThreads(2) { Tensor.concatenate([a, b], alongAxis: 1) }
        XCTAssertEqual(c.shape, [3, 24, 100, 100])
        let cs = c.scalars, As = a.scalars, Bs = b.scalars
        var mismatches = 0
        for n in 0..<3 {
            for ch in 0..<24 {
                for p in stride(from: 0, to: plane, by: 7) {
                    let expected = ch < 16 ? As[(n * 16 + ch) * plane + p] : Bs[(n * 8 + ch - 16) * plane + p]
                    if cs[(n * 24 + ch) * plane + p] != expected { mismatches += 1 }
                }
            }
        }
        XCTAssertEqual(mismatches, 0)
        let back = withThreads(2) { c.slice(alongAxis: 1, 16..<24) }
        XCTAssertEqual(back.scalars, Bs)
        // The slice's gradient scatters back into zeros of the full shape.
        let leaf = c.requiringGradient()
        withThreads(2) { leaf.slice(alongAxis: 1, 16..<24).backward(seed: b) }
        let g = leaf.gradient!.scalars
        XCTAssertEqual(g[(0 * 24 + 3) * plane + 5], 0)
        XCTAssertEqual(g[(2 * 24 + 20) * plane + 77], Bs[(2 * 8 + 4) * plane + 77])
        XCTAssertEqual(g.reduce(0) { $0 + Double($1) }, Bs.reduce(0) { $0 + Double($1) }, accuracy: 1e-2)
    }

    func testPadding() {
        let x = Tensor(shape: [1, 3], scalars: [1, 2, 3])
        XCTAssertEqual(x.padded(top: 0, bottom: 0, left: 2, right: 1).scalars, [0, 0, 1, 2, 3, 0])
        XCTAssertEqual(x.padded(top: 0, bottom: 0, left: 2, right: 2, mode: .reflect).scalars, [3, 2, 1, 2, 3, 2, 1])
        let y = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]).padded(top: 1, bottom: 0, left: 0, right: 0, mode: .reflect)
        XCTAssertEqual(y.scalars, [3, 4, 1, 2, 3, 4])
        checkGradients([randomTensor([2, 4, 5], seed: 5)]) { $0[0].padded(top: 1, bottom: 2, left: 3, right: 1) }
        checkGradients([randomTensor([2, 4, 5], seed: 6)]) { $0[0].padded(top: 2, bottom: 1, left: 1, right: 3, mode: .reflect) }
    }
}
