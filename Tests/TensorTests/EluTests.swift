import Foundation
import Tensor
import XCTest

final class EluTests: XCTestCase {
    func testForwardMatchesDoubleReference() {
        // Includes large negative values (clamped exponent), tails shorter than 16 and both signs.
        for (count, range) in [(1, Float(-3)...3), (37, -100...10), (100_003, -20...20)] {
            let x = randomTensor([count], seed: UInt64(count), range: range)
            for alpha: Float in [1, 0.3] {
                let y = x.elu(alpha: alpha).scalars
                for (i, v) in x.scalars.enumerated() {
                    let expected = v > 0 ? Double(v) : Double(alpha) * (Foundation.exp(Double(v)) - 1)
                    XCTAssertEqual(Double(y[i]), expected, accuracy: 2e-7 * max(1, abs(expected)), "x = \(v)")
                }
            }
        }
        XCTAssertTrue(Tensor(shape: [1], scalars: [.nan]).elu().scalar.isNaN)
    }

    func testGradients() {
        let x = randomTensor([3, 37], seed: 1, range: -3...3)
        checkGradients([x], step: 1e-3) { $0[0].elu() }
        checkGradients([x], step: 1e-3) { $0[0].elu(alpha: 0.5) }
    }
}
