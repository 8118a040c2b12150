import Tensor
import XCTest

final class ArithmeticTests: XCTestCase {
    func testBroadcastAddMatchesReference() {
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [3], scalars: [10, 20, 30])
        XCTAssertEqual((a + b).scalars, [11, 22, 33, 14, 25, 36])
        let c = Tensor(shape: [2, 1], scalars: [100, 200])
        XCTAssertEqual((a + c).scalars, [101, 102, 103, 204, 205, 206])
        XCTAssertEqual((c * b).shape, [2, 3])
        XCTAssertEqual((c * b).scalars, [1000, 2000, 3000, 2000, 4000, 6000])
    }

    func testBinaryGradientsWithBroadcasting() {
        let a = randomTensor([2, 3, 4], seed: 1)
        let b = randomTensor([3, 1], seed: 2)
        checkGradients([a, b]) { $0[0] + $0[1] }
        checkGradients([a, b]) { $0[0] - $0[1] }
        checkGradients([a, b]) { $0[0] * $0[1] }
        let positive = randomTensor([3, 1], seed: 3, range: 0.5...2)
        checkGradients([a, positive]) { $0[0] / $0[1] }
    }
}
