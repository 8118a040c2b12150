import Foundation
@testable import Tensor
import XCTest

final class AutodiffTests: XCTestCase {
    func testComposedExpressionReusingAVariable() {
        // f(x) = sum(x * x + sigmoid(x) * x) ; df/dx = 2x + s + x s (1 - s)
        let x = randomTensor([4], seed: 3).requiringGradient()
        let f = (x * x + x.sigmoid() * x).sum()
        f.backward()
        let s = x.detached.sigmoid()
        let expected = 2 * x.detached + s + x.detached * s * (1 - s)
        XCTAssertTrue(x.gradient!.isApproximatelyEqual(to: expected, tolerance: 1e-5))
        checkGradients([randomTensor([4], seed: 3)]) { let x = $0[0]; return x * x + x.sigmoid() * x }
    }

    func testGradientsAccumulateAcrossBackwardCalls() {
        let x = Tensor(shape: [2], scalars: [1, 2]).requiringGradient()
        (x * 3).sum().backward()
        (x * 3).sum().backward()
        XCTAssertEqual(x.gradient!.scalars, [6, 6])
        x.zeroGradient()
        XCTAssertNil(x.gradient)
    }

    func testBackwardWithSeed() {
        let x = Tensor(shape: [2], scalars: [1, 2]).requiringGradient()
        (x * x).backward(seed: Tensor(shape: [2], scalars: [1, 10]))
        XCTAssertEqual(x.gradient!.scalars, [2, 40])
    }

    func testNothingRecordedWithoutGradients() {
        let x = Tensor(shape: [2], scalars: [1, 2]).requiringGradient()
        let y = withoutGradients { (x * x).exp().sum() }
        XCTAssertFalse(y.requiresGradient)
        let z = (x * x).sum()
        XCTAssertTrue(z.requiresGradient)
        XCTAssertTrue(GradientMode.isEnabled)
        withoutGradients { withoutGradients {}; XCTAssertFalse(GradientMode.isEnabled) }
        XCTAssertTrue(GradientMode.isEnabled)
    }

    func testOnlyRequestedLeavesReceiveGradients() {
        let a = Tensor(shape: [2], scalars: [1, 2]).requiringGradient()
        let b = Tensor(shape: [2], scalars: [3, 4])
        (a * b).sum().backward()
        XCTAssertEqual(a.gradient!.scalars, [3, 4])
        XCTAssertNil(b.gradient)
    }

    /// Graphs built and walked on several threads at once add into one shared leaf without losing
    /// an update (the leaf's gradient is accumulated under its lock).
    func testConcurrentBackwardPassesAccumulateIntoASharedLeaf() {
        let w = Tensor(shape: [3], scalars: [1, 2, 3]).requiringGradient()
        _ = Threads.count  // settle the thread setting before workers read it
        DispatchQueue.concurrentPerform(iterations: 200) { i in
            (w * Float(i % 7 + 1)).sum().backward()
            if i % 50 == 0 { _ = w.gradient }
        }
        let expected = Float((0..<200).reduce(0) { $0 + $1 % 7 + 1 })
        XCTAssertEqual(w.gradient?.scalars, [expected, expected, expected])
    }

    func testGraphIsFreedAndMemoryDoesNotGrow() {
        let w = randomTensor([64, 64], seed: 1).requiringGradient()
        let x = randomTensor([32, 64], seed: 2)
        weak var weakNode: AnyObject?
        func step() {
            let h = matmul(x, w).relu()
            let loss = (h * h).mean()
            loss.backward()
            w.zeroGradient()
        }
        for _ in 0..<50 { step() }
        let before = residentMemoryBytes()
        for _ in 0..<1000 { step() }
        let after = residentMemoryBytes()
        // A leaked graph would keep ~16 KiB of activations per iteration (>= 16 MB after 1000).
        XCTAssertLessThan(after - before, 8 << 20, "RSS grew by \(after - before) bytes over 1000 iterations")
        do {
            let y = (w * 2).sum()
            weakNode = y.node
        }
        XCTAssertNil(weakNode, "the tape node outlived its tensor")
    }
}

/// Resident set size from /proc/self/statm.
func residentMemoryBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return (Int(fields[1]) ?? 0) * 4096
}
