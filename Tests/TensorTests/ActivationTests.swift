import Foundation
@testable import Tensor
import XCTest

/// Every activation with a Double reference of its function and the accuracy the kernel must reach
/// (relative above 1, absolute below). The oracle for the standalone op here and for the fused
/// batch-norm path in BatchNormTests: a new activation adds one row.
let referenceActivations: [(activation: Activation, reference: (Double) -> Double, tolerance: Double)] = [
    (.identity, { $0 }, 0),
    (.relu, { max($0, 0) }, 0),
    (.elu(alpha: 1), { $0 > 0 ? $0 : Foundation.exp($0) - 1 }, 2e-7),
    (.elu(alpha: 0.3), { $0 > 0 ? $0 : 0.3 * (Foundation.exp($0) - 1) }, 2e-7),
    (.sigmoid, { 1 / (1 + Foundation.exp(-$0)) }, 3e-7),
    (.tanh, { Foundation.tanh($0) }, 3e-7),
]

/// The Double reference of `activation` (a row of `referenceActivations`).
func reference(of activation: Activation) -> (Double) -> Double {
    guard let row = referenceActivations.first(where: { $0.activation == activation }) else {
        preconditionFailure("no reference for \(activation): add a row to referenceActivations")
    }
    return row.reference
}

final class ActivationTests: XCTestCase {
    func testEveryActivationHasAReference() {
        let covered = Set(referenceActivations.map(\.activation.name))
        for activation in Activation.all {
            XCTAssertTrue(covered.contains(activation.name), "\(activation) has no row in referenceActivations")
        }
    }

    func testForwardMatchesDoubleReference() {
        // Large negative values (clamped exponent), tails shorter than 16, both signs, and a size
        // split over the threads.
        for (count, range) in [(1, Float(-3)...3), (37, -100...10), (100_003, -20...20)] {
            let x = randomTensor([count], seed: UInt64(count), range: range)
            for (activation, f, tolerance) in referenceActivations {
                let y = x.activated(activation).scalars
                for (i, v) in x.scalars.enumerated() {
                    let expected = f(Double(v))
                    XCTAssertEqual(Double(y[i]), expected, accuracy: tolerance * max(1, abs(expected)),
                                   "\(activation) at \(v)")
                }
            }
        }
    }

    func testNaNPropagates() {
        let nan = Tensor(shape: [17], scalars: [Float](repeating: .nan, count: 17))
        for (activation, _, _) in referenceActivations {
            XCTAssertTrue(nan.activated(activation).scalars.allSatisfy(\.isNaN), "\(activation)")
        }
    }

    func testTensorMethodsAreTheActivations() {
        let x = randomTensor([3, 37], seed: 2, range: -3...3)
        XCTAssertEqual(x.relu().scalars, x.activated(.relu).scalars)
        XCTAssertEqual(x.elu().scalars, x.activated(.elu(alpha: 1)).scalars)
        XCTAssertEqual(x.elu(alpha: 0.3).scalars, x.activated(.elu(alpha: 0.3)).scalars)
        XCTAssertEqual(x.sigmoid().scalars, x.activated(.sigmoid).scalars)
        XCTAssertEqual(x.tanh().scalars, x.activated(.tanh).scalars)
        XCTAssertEqual(Activation.elu(alpha: 0.3), .elu(alpha: 0.3))
        XCTAssertNotEqual(Activation.elu(alpha: 0.3), .elu(alpha: 1))
        XCTAssertEqual(Activation.elu(alpha: 0.5).description, "elu(alpha: 0.5)")
        XCTAssertEqual(Activation.relu.description, "relu")
    }

    func testGradients() {
        // Inputs at least 0.05 from ReLU's kink, so the finite differences do not straddle it.
        let raw = randomTensor([3, 37], seed: 1, range: -3...3)
        let x = Tensor(shape: raw.shape, scalars: raw.scalars.map { $0 + ($0 < 0 ? -0.05 : 0.05) })
        for (activation, _, _) in referenceActivations {
            checkGradients([x], step: 1e-3) { $0[0].activated(activation) }
        }
    }

    func testBackwardIsRecordedUnderTheActivationName() {
        let x = randomTensor([4], seed: 3).requiringGradient()
        XCTAssertEqual(x.activated(.elu(alpha: 0.5)).node?.op, "elu")
        XCTAssertEqual(x.activated(.tanh).node?.op, "tanh")
        XCTAssertTrue(x.activated(.identity).node === x.node, "identity returns its input")
    }
}
