import XCTest
@testable import UNet

final class MetricsTests: XCTestCase {
    // (target, predicted): (0,0) x2, (0,1) x2, (1,0) x1, (1,1) x3.
    let predicted: [UInt8] = [0, 0, 1, 1, 1, 0, 1, 1]
    let target: [UInt8] = [0, 1, 1, 1, 0, 0, 1, 0]

    func testConfusionCountsAndScoresByHand() {
        var m = ConfusionMatrix(classCount: 2)
        m.add(predicted: predicted, target: target)
        XCTAssertEqual(m.counts, [2, 2, 1, 3])
        XCTAssertEqual(m.total, 8)
        XCTAssertEqual(m.truePositives(0), 2); XCTAssertEqual(m.falsePositives(0), 1); XCTAssertEqual(m.falseNegatives(0), 2)
        XCTAssertEqual(m.truePositives(1), 3); XCTAssertEqual(m.falsePositives(1), 2); XCTAssertEqual(m.falseNegatives(1), 1)
        XCTAssertEqual(m.pixelAccuracy, 5.0 / 8.0, accuracy: 1e-12)
        XCTAssertEqual(m.jaccard(0), 2.0 / 5.0, accuracy: 1e-12)
        XCTAssertEqual(m.jaccard(1), 3.0 / 6.0, accuracy: 1e-12)
        XCTAssertEqual(m.meanJaccard, 0.45, accuracy: 1e-12)
        XCTAssertEqual(m.dice(0), 4.0 / 7.0, accuracy: 1e-12)
        XCTAssertEqual(m.dice(1), 6.0 / 9.0, accuracy: 1e-12)
        XCTAssertEqual(m.meanDice, (4.0 / 7.0 + 2.0 / 3.0) / 2, accuracy: 1e-12)
    }

    func testProbabilityAndScoresAgreeWithClasses() {
        var reference = ConfusionMatrix()
        reference.add(predicted: predicted, target: target)

        var fromProbability = ConfusionMatrix()
        fromProbability.add(cellProbability: predicted.map { $0 == 1 ? 0.9 : 0.2 }, target: target)
        XCTAssertEqual(fromProbability, reference)

        // Two images of 4 pixels, [N, C, P] logits; class 1 wins where predicted == 1.
        var logits = [Float]()
        for n in 0..<2 {
            let slice = predicted[(n * 4)..<(n * 4 + 4)]
            logits += slice.map { $0 == 1 ? -1.0 : 2.0 }   // class 0 score
            logits += slice.map { $0 == 1 ? 3.0 : 0.5 }    // class 1 score
        }
        var fromLogits = ConfusionMatrix()
        fromLogits.add(scores: logits, target: target, pixelsPerImage: 4)
        XCTAssertEqual(fromLogits, reference)

        var fromTensor = ConfusionMatrix()
        fromTensor.add(scores: Tensor(shape: [2, 2, 2, 2], scalars: logits),
                       target: Tensor(shape: [2, 2, 2], scalars: target.map { Float($0) }))
        XCTAssertEqual(fromTensor, reference)
    }

    func testMergeSumsAndJaccardIsFromSummedMatrix() {
        var first = ConfusionMatrix(), second = ConfusionMatrix(), whole = ConfusionMatrix()
        first.add(predicted: Array(predicted[0..<4]), target: Array(target[0..<4]))
        second.add(predicted: Array(predicted[4...]), target: Array(target[4...]))
        whole.add(predicted: predicted, target: target)
        XCTAssertEqual(first.merging(second), whole)
        var merged = first
        merged.merge(second)
        XCTAssertEqual(merged, whole)
        // Class 0 per image: 1/2 and 1/3 (mean 5/12); from the summed matrix: 2/5.
        XCTAssertEqual(first.jaccard(0), 1.0 / 2.0, accuracy: 1e-12)
        XCTAssertEqual(second.jaccard(0), 1.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(whole.jaccard(0), 0.4, accuracy: 1e-12)
        merged.reset()
        XCTAssertEqual(merged.total, 0)
    }

    func testThreeClassesAndAbsentClass() {
        var m = ConfusionMatrix(classCount: 3)
        m.add(predicted: [0, 1, 1, 0], target: [0, 1, 0, 0])
        XCTAssertEqual(m.jaccard(2), 1)   // absent everywhere
        XCTAssertEqual(m.jaccard(0), 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(m.jaccard(1), 1.0 / 2.0, accuracy: 1e-12)
        XCTAssertEqual(m.pixelAccuracy, 0.75, accuracy: 1e-12)
    }
}
