import Foundation
@testable import Tensor
import XCTest

final class OpProfilerTests: XCTestCase {
    override func setUp() {
        OpProfiler.isEnabled = true
        OpProfiler.reset()
    }

    override func tearDown() {
        OpProfiler.isEnabled = false
        OpProfiler.reset()
        OpProfiler.state.clock = OpProfiler.systemClock
    }

    /// A clock that advances only when the test says so.
    final class ManualClock {
        var now: UInt64 = 0
        func install() { OpProfiler.state.clock = { self.now } }
    }

    func row(_ category: String) -> OpProfiler.Row? { OpProfiler.snapshot().first { $0.category == category } }

    func testOpsChargeTheCategoriesTheyRecord() {
        let x = randomTensor([2, 4, 16, 16], seed: 1).requiringGradient()
        let w = randomTensor([8, 4, 3, 3], seed: 2).requiringGradient()
        let y = conv2d(x, weight: w, padding: .same).relu()
        maxPool2d(y).sum().backward()
        let expected: [(OpProfiler.Category, Int)] = [
            (.convForward, 1), (.activationForward, 1), (.poolingForward, 1),
            (.elementwiseBackward, 1), (.poolingBackward, 1), (.activationBackward, 1),
            (.convBackward, 1), (.convBackwardData, 1), (.convBackwardWeight, 1),
        ]
        for (category, calls) in expected {
            XCTAssertEqual(row(category.name)?.calls, calls, "\(category) in \(OpProfiler.snapshot().map(\.category))")
        }
        XCTAssertEqual(OpProfiler.snapshot().count, expected.count, "\(OpProfiler.snapshot().map(\.category))")
    }

    func testBatchNormAndConcatenationCategories() {
        let x = randomTensor([2, 3, 4, 4], seed: 3).requiringGradient()
        let (y, _, _) = batchNormTraining(x, scale: Tensor.ones([3]), offset: Tensor.zeros([3]), activation: .elu(alpha: 1))
        Tensor.concatenate([y, x], alongAxis: 1).sum().backward()
        for category in ["batch norm forward", "batch norm backward", "concat/crop forward", "concat/crop backward"] {
            XCTAssertEqual(row(category)?.calls, 1, "\(category) in \(OpProfiler.snapshot().map(\.category))")
        }
    }

    func testBackwardIsChargedToTheCategoryGivenToRecordOp() {
        let x = Tensor(shape: [2], scalars: [1, 2]).requiringGradient()
        var y = x.detached
        y.recordOp("custom", profiledAs: "custom backward", inputs: [x]) { g in [g] }
        y.backward(seed: Tensor(shape: [2], scalars: [1, 1]))
        XCTAssertEqual(row("custom backward")?.calls, 1)
        XCTAssertEqual(x.gradient?.scalars, [1, 1])
    }

    func testNestedTimeIsChargedExclusively() {
        let clock = ManualClock()
        clock.install()
        OpProfiler.measure("outer") {
            clock.now += 5
            OpProfiler.measure("inner") { clock.now += 20 }
            clock.now += 3
            OpProfiler.measure("inner") {
                clock.now += 4
                OpProfiler.measure("innermost") { clock.now += 2 }
                clock.now += 1
            }
        }
        OpProfiler.measure("after") { clock.now += 10 }
        func nanoseconds(_ category: String) -> Double { (row(category)?.seconds ?? -1) * 1e9 }
        XCTAssertEqual(nanoseconds("outer"), 8, accuracy: 1e-6)
        XCTAssertEqual(nanoseconds("inner"), 25, accuracy: 1e-6)
        XCTAssertEqual(nanoseconds("innermost"), 2, accuracy: 1e-6)
        XCTAssertEqual(nanoseconds("after"), 10, accuracy: 1e-6)
        XCTAssertEqual(row("inner")?.calls, 2)
        // The rows add up to the wall time, and the snapshot lists the largest first.
        XCTAssertEqual(OpProfiler.snapshot().reduce(0) { $0 + $1.seconds } * 1e9, 45, accuracy: 1e-6)
        XCTAssertEqual(OpProfiler.snapshot().map(\.category), ["inner", "after", "outer", "innermost"])
    }

    func testAThrowingBodyIsStillCharged() {
        struct Failure: Error {}
        let clock = ManualClock()
        clock.install()
        XCTAssertThrowsError(try OpProfiler.measure("failing") { clock.now += 7; throw Failure() })
        XCTAssertEqual(row("failing")?.calls, 1)
        XCTAssertEqual((row("failing")?.seconds ?? 0) * 1e9, 7, accuracy: 1e-6)
        XCTAssertTrue(OpProfiler.state.nested.isEmpty, "the failed measurement is closed")
    }

    func testOnlyTheEnablingThreadIsProfiled() {
        final class Observed: @unchecked Sendable { var enabled = true, rows = -1 }
        let observed = Observed(), done = DispatchSemaphore(value: 0)
        let thread = Thread {
            observed.enabled = OpProfiler.isEnabled
            OpProfiler.measure("elsewhere") {
                _ = conv2d(randomTensor([1, 1, 8, 8], seed: 1), weight: randomTensor([1, 1, 3, 3], seed: 2))
            }
            observed.rows = OpProfiler.snapshot().count
            done.signal()
        }
        thread.start()
        done.wait()
        XCTAssertFalse(observed.enabled)
        XCTAssertEqual(observed.rows, 0)
        XCTAssertNil(row("elsewhere"))
        XCTAssertNil(row("conv forward"))
    }

    func testDisabledRecordsNothingAndKeepsTheTotals() {
        OpProfiler.measure("kept") {}
        OpProfiler.isEnabled = false
        _ = conv2d(randomTensor([1, 1, 8, 8], seed: 1), weight: randomTensor([1, 1, 3, 3], seed: 2))
        XCTAssertEqual(OpProfiler.snapshot().map(\.category), ["kept"])
        OpProfiler.reset()
        XCTAssertTrue(OpProfiler.snapshot().isEmpty)
    }
}
