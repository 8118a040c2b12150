@testable import UNet
import Foundation
import NN
import Tensor
import XCTest

/// A stand-in for K ranks that all hold the same values: an all-reduce multiplies by K. Lets the
/// data-parallel bookkeeping be tested in one process.
final class MirroredRanks: Collective {
    let size: Int
    let rank = 0
    var allReduceCalls: [Int] = []
    init(size: Int) { self.size = size }
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {
        allReduceCalls.append(buffer.count)
        for i in buffer.indices { buffer[i] *= Float(size) }
    }
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {
        allReduceCalls.append(buffer.count)
        for i in buffer.indices { buffer[i] *= Double(size) }
    }
    func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) -> CollectiveRequest {
        allReduceSum(buffer)
        return SingleProcess.Done()
    }
    func allReduceMax(_ value: Int64) -> Int64 { value }
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, from root: Int) {}
    func send(_ buffer: UnsafeRawBufferPointer, to destination: Int) { XCTFail("no point-to-point here") }
    func receive(_ buffer: UnsafeMutableRawBufferPointer, from source: Int) { XCTFail("no point-to-point here") }
    func barrier() {}
    func abort(exitCode: Int32) -> Never { fatalError("abort \(exitCode)") }
}

final class CollectiveTests: XCTestCase {
    func testSingleProcessLeavesEverythingAsItIs() {
        let one = SingleProcess()
        XCTAssertEqual([one.rank, one.size], [0, 1])
        XCTAssertTrue(one.isLeader)
        var floats: [Float] = [1, 2, 3]
        one.allReduceSum(&floats)
        one.broadcast(&floats)
        XCTAssertEqual(floats, [1, 2, 3])
        var text = "run folder"
        one.broadcast(&text)
        XCTAssertEqual(text, "run folder")
        XCTAssertTrue(one.any(true))
        XCTAssertFalse(one.any(false))
        XCTAssertEqual(one.allReduceMax(7), 7)
    }

    /// Gradients go through buckets smaller than some tensors (so those are split) and come back
    /// summed, each into its own parameter, with no value lost or shifted.
    func testGradientsAreSummedThroughBucketsIntoTheirParameters() {
        let shapes = [[3, 2], [7], [1], [2, 2, 2]]
        var parameters: [Parameter] = []
        var expected: [[Float]] = []
        var next: Float = 1
        for shape in shapes {
            let count = shape.reduce(1, *)
            let p = Parameter(Tensor.zeros(shape))
            let g = (0..<count).map { _ -> Float in next += 1; return next }
            (p.value * Tensor(shape: shape, scalars: g)).sum().backward()   // gradient = g
            parameters.append(p)
            expected.append(g.map { $0 * 3 })
        }
        let frozen = Parameter(Tensor.zeros([4]), trainable: false)
        let ranks = MirroredRanks(size: 3)
        let synchronizer = GradientSynchronizer(parameters: parameters + [frozen], collective: ranks, bucketFloats: 5)
        synchronizer.synchronize()
        for (p, e) in zip(parameters, expected) { XCTAssertEqual(p.gradient?.scalars, e) }
        XCTAssertNil(frozen.gradient)
        XCTAssertEqual(ranks.allReduceCalls, [5, 5, 5, 5, 2], "22 floats in buckets of 5")
    }

    /// A parameter that backward did not reach keeps no gradient (every rank runs the same graph).
    func testParametersWithoutGradientAreSkipped() {
        let used = Parameter(Tensor(shape: [2], scalars: [1, 2])), unused = Parameter(Tensor.zeros([3]))
        (used.value * 2).sum().backward()
        GradientSynchronizer(parameters: [used, unused], collective: MirroredRanks(size: 2)).synchronize()
        XCTAssertEqual(used.gradient?.scalars, [4, 4])
        XCTAssertNil(unused.gradient)
    }

    /// Ranks that draw their parts of a batch see, together, the tiles of the whole batch.
    func testBatchPartsMakeUpTheWholeBatch() throws {
        let data = try SyntheticEM(width: 48, height: 48, seed: 3).dataset(trainCount: 4)
        let sampler = BatchSampler(slices: data.train, batchSize: 5, inputSize: 32, outputSize: 32, augment: true,
                                   loss: .weighted, seed: 9)
        let whole = sampler.batch(epoch: 2, index: 1)
        let parts = [0..<2, 2..<3, 3..<5].map { sampler.batch(epoch: 2, index: 1, items: $0) }
        XCTAssertEqual(parts.flatMap { $0.images.scalars }, whole.images.scalars)
        XCTAssertEqual(parts.flatMap { $0.targets.scalars }, whole.targets.scalars)
        XCTAssertEqual(parts.flatMap { $0.weights!.scalars }, whole.weights!.scalars)
        XCTAssertEqual(parts.map { $0.images.shape[0] }, [2, 1, 2])
    }

    /// A confusion matrix rebuilt from summed counts is the matrix of the union of the pixels.
    func testConfusionMatricesAddByTheirCounts() {
        var a = ConfusionMatrix(classCount: 2), b = ConfusionMatrix(classCount: 2), both = ConfusionMatrix(classCount: 2)
        a.add(predicted: [0, 1, 1], target: [0, 0, 1])
        b.add(predicted: [1, 0], target: [1, 1])
        both.add(predicted: [0, 1, 1, 1, 0], target: [0, 0, 1, 1, 1])
        XCTAssertEqual(ConfusionMatrix(classCount: 2, counts: zip(a.counts, b.counts).map(+)), both)
    }
}
