import Foundation
import NN
import XCTest

/// A module with a weight and a bias, for tests that need parameters but no layers.
final class Affine: Module {
    let weight: Parameter
    let bias: Parameter

    init(_ weight: [Float], shape: [Int], bias: [Float]) {
        self.weight = Parameter(Tensor(shape: shape, scalars: weight))
        self.bias = Parameter(Tensor(shape: [bias.count], scalars: bias))
    }

    convenience init(inputs: Int, outputs: Int, seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        let w = Initializer.glorotUniform().makeTensor(shape: [outputs, inputs], generator: &rng)
        let b = Tensor.randomUniform([outputs], lowerBound: -0.1, upperBound: 0.1, generator: &rng)
        self.init(w.scalars, shape: [outputs, inputs], bias: b.scalars)
    }

    /// x [N, inputs] -> [N, outputs]
    func callAsFunction(_ x: Tensor) -> Tensor { matmul(x, weight.value.transposed()) + bias.value }
}

/// Nested modules with arrays and a keyed buffer, for dotted-name tests.
final class Tower: Module {
    let stem = Affine(inputs: 3, outputs: 4, seed: 1)
    let blocks = [Affine(inputs: 4, outputs: 4, seed: 2), Affine(inputs: 4, outputs: 4, seed: 3)]
    let head = Affine(inputs: 4, outputs: 2, seed: 4)
    let statistics = Buffer(Tensor(shape: [4], scalars: [0.5, -1, 2, 0]), key: "running_mean")

    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = stem(x).relu()
        for block in blocks { h = block(h).relu() }
        return head(h)
    }
}

/// A fresh empty directory under the system temporary directory, removed at the end of the test.
func makeTemporaryDirectory(_ test: XCTestCase) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("nn-tests-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// Bit patterns of a tensor's elements, for exact comparisons that also cover NaN and -0.
func bits(_ t: Tensor) -> [UInt32] { t.scalars.map(\.bitPattern) }

/// Asserts every element of `actual` is within `tolerance` of `expected` (relative to its magnitude).
func assertClose(_ actual: [Float], _ expected: [Double], tolerance: Double = 1e-6,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "count", file: file, line: line)
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        XCTAssertLessThanOrEqual(abs(Double(a) - e), tolerance * max(1, abs(e)),
                                 "element \(i): \(a) vs expected \(e)", file: file, line: line)
    }
}
