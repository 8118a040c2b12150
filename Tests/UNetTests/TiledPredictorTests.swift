@testable import UNet
import XCTest

final class TiledPredictorTests: XCTestCase {
    /// A fake "network": a 5x5 box filter with zero padding (same size out), logits [f, -f].
    /// Its receptive radius is 2, so a context margin of 2 makes tiling exact.
    static func boxFilterForward(_ x: Tensor) -> Tensor {
        let (n, _, h, w) = x.shape4("box")
        let src = x.scalars
        var out = [Float](repeating: 0, count: n * 2 * h * w)
        for b in 0..<n { for y in 0..<h { for xx in 0..<w {
            var s: Float = 0
            for dy in -2...2 { for dx in -2...2 {
                let yy = y + dy, xc = xx + dx
                if yy >= 0 && yy < h && xc >= 0 && xc < w { s += src[b * h * w + yy * w + xc] * Float(3 + dy + 2 * dx) * 0.05 }
            } }
            out[b * 2 * h * w + y * w + xx] = s
            out[b * 2 * h * w + h * w + y * w + xx] = -s
        } } }
        return Tensor(shape: [n, 2, h, w], scalars: out)
    }

    func testTiledPredictionEqualsWholeImagePrediction() {
        let h = 37, w = 53
        var rng = SeededGenerator(seed: 3)
        let pixels = (0..<(h * w)).map { _ in rng.nextUnitFloat() }
        let geometry = TileGeometry(alignment: 1, contextMargin: 2, outputSize: { $0 })
        let whole = TiledPredictor(geometry: geometry, tileSize: 64, forward: Self.boxFilterForward)
            .probabilities(pixels: pixels, height: h, width: w)
        XCTAssertEqual(whole.shape, [2, h, w])
        for tile in [8, 11, 20] {
            for batch in [1, 3] {
                let tiled = TiledPredictor(geometry: geometry, tileSize: tile, batchSize: batch, forward: Self.boxFilterForward)
                    .probabilities(pixels: pixels, height: h, width: w)
                XCTAssertLessThan(tiled.maxAbsoluteDifference(to: whole), 1e-6, "tile \(tile) batch \(batch)")
            }
        }
        // Probabilities sum to one.
        let total = whole.sum(alongAxis: 0)
        XCTAssertTrue(total.isApproximatelyEqual(to: Tensor.ones([h, w]), tolerance: 1e-5))
    }

    func testTooSmallMarginShowsSeams() {
        // The check above can fail: without the context margin the tiles disagree at their edges.
        let h = 24, w = 24
        var rng = SeededGenerator(seed: 4)
        let pixels = (0..<(h * w)).map { _ in rng.nextUnitFloat() }
        let honest = TileGeometry(alignment: 1, contextMargin: 2, outputSize: { $0 })
        let careless = TileGeometry(alignment: 1, contextMargin: 0, outputSize: { $0 })
        let whole = TiledPredictor(geometry: honest, tileSize: 64, forward: Self.boxFilterForward).probabilities(pixels: pixels, height: h, width: w)
        let seamy = TiledPredictor(geometry: careless, tileSize: 8, forward: Self.boxFilterForward).probabilities(pixels: pixels, height: h, width: w)
        XCTAssertGreaterThan(seamy.maxAbsoluteDifference(to: whole), 1e-3)
    }

    func testDihedralTransformsRoundTripAndDiffer() {
        let h = 3, w = 5
        let pixels = (0..<(h * w)).map(Float.init)
        var seen = Set<[Float]>()
        for t in DihedralTransform.all {
            let (moved, th, tw) = t.apply(pixels, h, w)
            XCTAssertEqual(th * tw, h * w)
            XCTAssertEqual(Set(moved), Set(pixels))
            seen.insert(moved)
            let back = t.invert(Tensor(shape: [1, th, tw], scalars: moved), height: h, width: w)
            XCTAssertEqual(back.scalars, pixels)
        }
        XCTAssertEqual(seen.count, 8, "the 8 transforms must be distinct")
    }

    func testMirrorIndex() {
        XCTAssertEqual((-3...7).map { mirrorIndex($0, 4) }, [3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1])
        XCTAssertEqual(mirrorIndex(5, 1), 0)
    }
}

final class PrefetcherTests: XCTestCase {
    func testDeliversEveryItemInOrder() {
        let prefetcher = Prefetcher(count: 20, depth: 3) { i -> Int in
            usleep(UInt32((i % 3) * 1000))
            return i * i
        }
        var got: [Int] = []
        while let x = prefetcher.next() { got.append(x) }
        XCTAssertEqual(got, (0..<20).map { $0 * $0 })
        XCTAssertNil(prefetcher.next())
    }

    func testRunsAheadOfTheConsumerUpToItsDepth() {
        // The producer signals each item it makes; before the consumer takes anything, the
        // background thread must make exactly `depth` items and then wait (no timing involved).
        let made = DispatchSemaphore(value: 0)
        let counter = ProducedCounter()
        let prefetcher = Prefetcher(count: 6, depth: 2) { i -> Int in
            counter.increment()
            made.signal()
            return i
        }
        XCTAssertEqual(made.wait(timeout: .now() + 30), .success, "first item not produced in the background")
        XCTAssertEqual(made.wait(timeout: .now() + 30), .success, "second item not produced in the background")
        XCTAssertEqual(made.wait(timeout: .now() + 0.3), .timedOut, "the producer ran more than depth items ahead")
        XCTAssertEqual(counter.value, 2)
        var got: [Int] = []
        while let x = prefetcher.next() { got.append(x) }
        XCTAssertEqual(got, Array(0..<6))
        XCTAssertEqual(counter.value, 6)
    }
}

/// A thread-safe count of the items a producer made.
private final class ProducedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

final class TrainingLogTests: XCTestCase {
    func testTutorialLineAndCSVRoundTrip() {
        let r = EpochRecord(epoch: 3, trainCost: 0.160667, validationCost: 0.265909, validationAccuracy: 0.888796,
                            validationJaccard: [0.636058, 0.861970], seconds: 4.379772, learningRate: 1e-4)
        XCTAssertEqual(r.tutorialLine, "EPOCH 3: Avg epoch training cost train 0.160667, cost val 0.265909, acc val 0.888796, jacc val class 0 0.636058, jacc val class 1 0.861970, jacc val 0.749014 took 4.379772 s, lr 0.0001")
        XCTAssertEqual(EpochRecord.csvHeader(classes: 2), "epoch,train_cost,val_cost,val_accuracy,val_jaccard_0,val_jaccard_1,val_jaccard_mean,seconds,learning_rate")
        let parsed = EpochRecord(csvRow: r.csvRow, classes: 2)
        XCTAssertEqual(parsed?.epoch, 3)
        XCTAssertEqual(parsed?.validationJaccard ?? [], [0.636058, 0.861970])
        XCTAssertNil(EpochRecord(csvRow: "1,2,3", classes: 2))
        let svg = trainingCurveSVG([r, EpochRecord(epoch: 4, trainCost: 0.15, validationCost: 0.25, validationAccuracy: 0.9,
                                                   validationJaccard: [0.65, 0.87], seconds: 4, learningRate: 1e-4)])
        XCTAssertTrue(svg.hasPrefix("<svg"))
        XCTAssertTrue(svg.contains("cost val (left)"))
        XCTAssertEqual(svg.components(separatedBy: "<path").count - 1, 3)
    }
}
