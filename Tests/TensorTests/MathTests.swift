import Foundation
import Tensor
import XCTest

final class MathTests: XCTestCase {
    func testUnaryForwardAgainstReference() {
        let values: [Float] = [-2, -0.5, 0.25, 1.5]
        let x = Tensor(shape: [4], scalars: values)
        func check(_ y: Tensor, _ f: (Float) -> Float, file: StaticString = #filePath, line: UInt = #line) {
            for (a, v) in zip(y.scalars, values) { XCTAssertEqual(a, f(v), accuracy: 1e-6, file: file, line: line) }
        }
        check(x.exp(), { Foundation.exp($0) })
        check(x.relu(), { max($0, 0) })
        check(x.elu(), { $0 > 0 ? $0 : Foundation.exp($0) - 1 })
        check(x.elu(alpha: 0.5), { $0 > 0 ? $0 : 0.5 * (Foundation.exp($0) - 1) })
        check(x.sigmoid(), { 1 / (1 + Foundation.exp(-$0)) })
        check(x.tanh(), { Foundation.tanh($0) })
        check(x.clamped(lowerBound: -1, upperBound: 1), { min(max($0, -1), 1) })
        check(-x, { -$0 })
        check(x * 3 + 1, { 3 * $0 + 1 })
        check(2 - x, { 2 - $0 })
        let p = Tensor(shape: [3], scalars: [0.5, 1, 4])
        XCTAssertEqual(p.log().scalars[2], Foundation.log(4), accuracy: 1e-6)
        XCTAssertEqual(p.sqrt().scalars, [Foundation.sqrt(0.5), 1, 2])
        XCTAssertEqual(p.pow(3).scalars[2], 64, accuracy: 1e-4)
    }

    func testUnaryGradients() {
        let x = randomTensor([3, 5], seed: 11, range: -2...2)
        let positive = randomTensor([3, 5], seed: 12, range: 0.5...3)
        checkGradients([x]) { $0[0].exp() }
        checkGradients([positive]) { $0[0].log() }
        checkGradients([positive]) { $0[0].sqrt() }
        checkGradients([positive]) { $0[0].pow(2.5) }
        checkGradients([x]) { $0[0].relu() }
        checkGradients([x]) { $0[0].elu() }
        checkGradients([x]) { $0[0].sigmoid() }
        checkGradients([x]) { $0[0].tanh() }
        checkGradients([x]) { $0[0].clamped(lowerBound: -0.7, upperBound: 0.9) }
        checkGradients([x]) { -$0[0] * 3 + 2 }
        checkGradients([positive]) { 1 / $0[0] }
    }

    func testReductions() {
        let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(x.sum().scalar, 21)
        XCTAssertEqual(x.mean().scalar, 3.5)
        XCTAssertEqual(x.sum(alongAxis: 0).scalars, [5, 7, 9])
        XCTAssertEqual(x.sum(alongAxis: 1, keepingDimensions: true).shape, [2, 1])
        XCTAssertEqual(x.sum(alongAxis: 1).scalars, [6, 15])
        XCTAssertEqual(x.mean(alongAxis: 0).scalars, [2.5, 3.5, 4.5])
        XCTAssertEqual(x.sum(alongAxes: [0, 1]).scalars, [21])
        XCTAssertEqual(x.max(alongAxis: 1).scalars, [3, 6])
        XCTAssertEqual(Tensor(shape: [2, 2], scalars: [5, 1, 2, 7]).argmax(alongAxis: 1).scalars, [0, 1])
        let big = Tensor(repeating: 0.1, shape: [1 << 20])
        XCTAssertEqual(big.sum().scalar, 104857.6, accuracy: 0.05)

        let y = randomTensor([2, 3, 4], seed: 21)
        checkGradients([y]) { $0[0].sum() }
        checkGradients([y]) { $0[0].mean() }
        checkGradients([y]) { $0[0].sum(alongAxes: [0, 2], keepingDimensions: true) }
        checkGradients([y]) { $0[0].mean(alongAxis: 1) }
        checkGradients([y]) { $0[0].max(alongAxis: 2) }
    }

    func testMatmulAgainstReference() {
        let a = randomTensor([3, 4], seed: 1), b = randomTensor([4, 5], seed: 2)
        let c = matmul(a, b)
        for i in 0..<3 { for j in 0..<5 {
            var s: Float = 0
            for k in 0..<4 { s += a[i, k] * b[k, j] }
            XCTAssertEqual(c[i, j], s, accuracy: 1e-5)
        } }
        checkGradients([a, b]) { matmul($0[0], $0[1]) }
        let batchedA = randomTensor([2, 3, 4], seed: 3), batchedB = randomTensor([2, 4, 2], seed: 4)
        let batched = matmul(batchedA, batchedB)
        XCTAssertEqual(batched.shape, [2, 3, 2])
        XCTAssertTrue(batched.slice(alongAxis: 0, 1..<2).reshaped(to: [3, 2]).isApproximatelyEqual(
            to: matmul(batchedA.slice(alongAxis: 0, 1..<2).reshaped(to: [3, 4]), batchedB.slice(alongAxis: 0, 1..<2).reshaped(to: [4, 2]))))
        checkGradients([batchedA, batchedB]) { matmul($0[0], $0[1]) }
        checkGradients([batchedA, b]) { matmul($0[0], $0[1]) }
    }

    func testSoftmaxAndCrossEntropy() {
        let logits = Tensor(shape: [1, 3], scalars: [1, 2, 3])
        let s = logits.softmax(alongAxis: 1).scalars
        let z = Foundation.exp(Float(1)) + Foundation.exp(Float(2)) + Foundation.exp(Float(3))
        XCTAssertEqual(s[2], Foundation.exp(3) / z, accuracy: 1e-6)
        XCTAssertEqual(logits.logSoftmax(alongAxis: 1).scalars[0], 1 - Foundation.log(z), accuracy: 1e-5)
        // Stable for large logits.
        let huge = Tensor(shape: [1, 2], scalars: [1000, 0]).logSoftmax(alongAxis: 1).scalars
        XCTAssertEqual(huge[0], 0, accuracy: 1e-6)
        XCTAssertEqual(huge[1], -1000, accuracy: 1e-3)
        let x = randomTensor([2, 3, 4], seed: 31, range: -3...3)
        checkGradients([x]) { $0[0].softmax(alongAxis: 1) }
        checkGradients([x]) { $0[0].logSoftmax(alongAxis: -1) }

        // Cross-entropy on [N, C, H, W] against a reference built from logSoftmax.
        let l = randomTensor([2, 3, 2, 2], seed: 32, range: -2...2)
        let targets = Tensor(shape: [2, 2, 2], scalars: [0, 1, 2, 1, 2, 0, 0, 1])
        let weights = randomTensor([2, 2, 2], seed: 33, range: 0.5...2)
        let mask = Tensor(shape: [2, 2, 2], scalars: [1, 1, 0, 1, 1, 1, 0, 1])
        let logp = l.logSoftmax(alongAxis: 1)
        var total: Float = 0, counted: Float = 0
        for n in 0..<2 { for h in 0..<2 { for w in 0..<2 where mask[n, h, w] != 0 {
            total += -logp[n, Int(targets[n, h, w]), h, w] * weights[n, h, w]; counted += 1
        } } }
        let loss = softmaxCrossEntropy(logits: l, targets: targets, weights: weights, mask: mask)
        XCTAssertEqual(loss.scalar, total / counted, accuracy: 1e-5)
        XCTAssertEqual(softmaxCrossEntropy(logits: l, targets: targets).scalar,
                       -(0..<8).map { i -> Float in
                           let n = i / 4, h = (i / 2) % 2, w = i % 2
                           return logp[n, Int(targets[n, h, w]), h, w] }.reduce(0, +) / 8, accuracy: 1e-5)
        checkGradients([l]) { softmaxCrossEntropy(logits: $0[0], targets: targets, weights: weights, mask: mask) }
        checkGradients([l]) { softmaxCrossEntropy(logits: $0[0], targets: targets) }
    }

    /// On an image large enough to be cut into chunks over the threads: the loss matches the
    /// logSoftmax reference, and loss and gradient are bit-identical with one and two threads.
    func testCrossEntropyChunksAgreeAcrossThreadCounts() {
        let l = randomTensor([3, 2, 128, 128], seed: 34, range: -4...4)
        let targets = Tensor(shape: [3, 128, 128], scalars: (0..<(3 * 128 * 128)).map { Float(($0 * 7 / 5) % 2) })
        let weights = randomTensor([3, 128, 128], seed: 35, range: 0.5...2)
        let mask = Tensor(shape: [3, 128, 128], scalars: (0..<(3 * 128 * 128)).map { $0 % 11 == 0 ? 0 : 1 })
        func run() -> (Float, [Float]) {
            let x = l.requiringGradient()
            let loss = softmaxCrossEntropy(logits: x, targets: targets, weights: weights, mask: mask)
            loss.backward()
            return (loss.scalar, x.gradient!.scalars)
        }
        let one = withThreads(1) { run() }, two = withThreads(2) { run() }
        XCTAssertEqual(one.0, two.0)
        XCTAssertEqual(one.1, two.1)
        let logp = l.logSoftmax(alongAxis: 1).scalars, t = targets.scalars, w = weights.scalars, m = mask.scalars
        var total = 0.0, counted = 0
        for pixel in 0..<(3 * 128 * 128) where m[pixel] != 0 {
            let n = pixel / (128 * 128), i = pixel % (128 * 128)
            total += -Double(logp[(n * 2 + Int(t[pixel])) * 128 * 128 + i]) * Double(w[pixel]); counted += 1
        }
        XCTAssertEqual(Double(one.0), total / Double(counted), accuracy: 1e-5)
    }
}

final class FastMathTests: XCTestCase {
    func testExpMatchesLibmClosely() {
        var worst: Double = 0
        var x: Float = -87
        while x < 88 {
            let exact = Foundation.exp(Double(x))
            worst = max(worst, abs(Double(FastMath.exp(x)) - exact) / exact)
            x += 0.01234
        }
        XCTAssertLessThan(worst, 2e-7, "measured 1.6e-7 for the fitted cubic")
        XCTAssertEqual(FastMath.exp(0), 1)
        XCTAssertLessThan(FastMath.exp(-200), 1e-37, "clamped to the smallest normal range")
        XCTAssertTrue(FastMath.exp(200).isFinite)
        XCTAssertTrue(FastMath.exp(.nan).isNaN)
        // The 16-lane form computes exactly what the scalar form does.
        let lanes = SIMD16<Float>((0..<16).map { Float($0) * 3.7 - 30 })
        let vector = FastMath.exp(lanes)
        for i in 0..<16 { XCTAssertEqual(vector[i], FastMath.exp(lanes[i])) }
    }

    func testStoragePoolReusesFreedBuffers() {
        let pool = StoragePool.shared
        pool.drain()
        do { _ = Tensor.zeros([1 << 20]) }
        XCTAssertEqual(pool.cachedByteCount, 4 << 20)
        let t = Tensor.ones([1 << 20])
        XCTAssertEqual(pool.cachedByteCount, 0, "the cached buffer was not reused")
        XCTAssertEqual(t.sum().scalar, Float(1 << 20))
        do { _ = Tensor.zeros([1000]) }  // small: not pooled
        XCTAssertEqual(pool.cachedByteCount, 0)
    }

    /// The cache keeps what fits under the in-use peak (a training step's buffers survive to the
    /// next step) but never lets a new allocation push the footprint past peak + capacity.
    func testStoragePoolIsBoundedByTheInUsePeak() {
        withDrainedPool(capacity: 1 << 20) { pool in
            let mib4 = 1 << 20  // floats in 4 MiB
            do { _ = (0..<8).map { _ in Tensor.zeros([mib4]) } }
            XCTAssertEqual(pool.cachedByteCount, 32 << 20, "all eight fit under the peak they made")
            do {
                let again = (0..<8).map { _ in Tensor.ones([mib4]) }
                XCTAssertEqual(pool.cachedByteCount, 0, "the second step reused every buffer")
                XCTAssertEqual(again.count, 8)
            }
            pool.drain()
            XCTAssertEqual(pool.cachedByteCount, 0)
            do { _ = (0..<2).map { _ in Tensor.zeros([mib4]) } }
            XCTAssertEqual(pool.cachedByteCount, 8 << 20)
            // A size the cache does not hold: the new peak leaves room for only the 1 MiB capacity.
            let big = Tensor.zeros([3 * mib4])
            XCTAssertEqual(pool.cachedByteCount, 0, "cached buffers were freed before the footprint grew")
            XCTAssertEqual(big.count, 3 * mib4)
        }
    }

    /// Runs `body` on the shared pool drained, with `capacity`, and restores the capacity after.
    func withDrainedPool(capacity: Int, _ body: (StoragePool) -> Void) {
        let pool = StoragePool.shared
        let savedCapacity = pool.capacityBytes
        defer { pool.capacityBytes = savedCapacity; pool.drain() }
        pool.drain()
        pool.capacityBytes = capacity
        body(pool)
    }

    /// Below the in-use peak, buffers of other sizes may be allocated next to the whole cache as long
    /// as in use + cached stays within peak + capacity (a training step's backward pass allocates
    /// gradients while the forward's buffers wait in the cache for the next step); past that bound
    /// the oldest cached buffers go.
    func testStoragePoolKeepsCacheWithinPeakPlusCapacity() {
        withDrainedPool(capacity: 8 << 20) { pool in
            let mib4 = 1 << 20, mib2 = 1 << 19  // floats in 4 and 2 MiB
            do { _ = (0..<8).map { _ in Tensor.zeros([mib4]) } }  // peak 32 MiB, then all cached
            XCTAssertEqual(pool.cachedByteCount, 32 << 20)
            do {
                let gradients = (0..<4).map { _ in Tensor.zeros([mib2]) }  // 8 MiB in use: 40 <= 32 + 8
                XCTAssertEqual(pool.cachedByteCount, 32 << 20, "nothing evicted within peak + capacity")
                let more = (0..<2).map { _ in Tensor.zeros([mib2]) }  // 12 MiB in use: the oldest 4 MiB goes
                XCTAssertEqual(pool.cachedByteCount, 28 << 20)
                XCTAssertEqual(gradients.count + more.count, 6)
            }
        }
    }
}
