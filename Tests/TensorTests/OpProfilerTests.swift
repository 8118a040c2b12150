import Tensor
import XCTest

final class OpProfilerTests: XCTestCase {
    func testExclusiveTimesPerCategory() {
        OpProfiler.isEnabled = true
        OpProfiler.reset()
        defer { OpProfiler.isEnabled = false }
        let x = randomTensor([2, 4, 16, 16], seed: 1).requiringGradient()
        let w = randomTensor([8, 4, 3, 3], seed: 2).requiringGradient()
        let y = conv2d(x, weight: w, padding: .same).relu()
        maxPool2d(y).sum().backward()
        let rows = OpProfiler.snapshot()
        let names = Set(rows.map(\.category))
        for expected in ["conv forward", "conv backward-data", "conv backward-weight", "activation forward",
                         "pooling forward", "pooling backward", "activation backward"] {
            XCTAssertTrue(names.contains(expected), "missing \(expected) in \(names.sorted())")
        }
        XCTAssertEqual(rows.first { $0.category == "conv forward" }?.calls, 1)
        XCTAssertTrue(rows.allSatisfy { $0.seconds >= 0 })
        // Nested measurements are exclusive: the outer category only keeps its own time.
        OpProfiler.reset()
        OpProfiler.measure("outer") { OpProfiler.measure("inner") { _ = usleep(20_000) } }
        let outer = OpProfiler.snapshot().first { $0.category == "outer" }!.seconds
        let inner = OpProfiler.snapshot().first { $0.category == "inner" }!.seconds
        XCTAssertGreaterThan(inner, 0.015)
        XCTAssertLessThan(outer, 0.005)
    }

    func testDisabledRecordsNothing() {
        OpProfiler.isEnabled = false
        OpProfiler.reset()
        _ = conv2d(randomTensor([1, 1, 8, 8], seed: 1), weight: randomTensor([1, 1, 3, 3], seed: 2))
        XCTAssertTrue(OpProfiler.snapshot().isEmpty)
    }
}
