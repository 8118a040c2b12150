import Foundation
import NN
import XCTest

/// A module with a parameter, a batch-norm style buffer and a batch counter.
final class Averaged: Module {
    let weight = Parameter(Tensor(shape: [2], scalars: [1, -2]))
    let running_mean = Buffer(Tensor(shape: [2], scalars: [0, 4]))
    let num_batches_tracked = Buffer(Tensor(shape: [], scalars: [0]))
}

final class ExponentialMovingAverageTests: XCTestCase {
    let input = Tensor(shape: [2, 3], scalars: [0.5, -1, 2, 1, 0, -0.5])
    let target = Tensor(shape: [2, 2], scalars: [1, 0, -1, 0.5])

    func trainStep(_ model: Tower, _ optimizer: Optimizer) {
        model.zeroGradients()
        let diff = model(input) - target
        (diff * diff).mean().backward()
        optimizer.step()
    }

    func testUpdatesFollowTheWarmedUpDecayAndCopyCounters() {
        let model = Averaged()
        let ema = ExponentialMovingAverage(module: model, decay: 0.9)
        XCTAssertEqual(ema.names, ["weight", "running_mean", "num_batches_tracked"])
        // Reference in Double: a_k = d_k a_{k-1} + (1 - d_k) v_k with d_k = min(0.9, (1 + k) / (10 + k)).
        var expected: [[Double]] = [[1, -2], [0, 4]]
        for k in 1...40 {
            let w: [Float] = [Float(k), -2 + 0.5 * Float(k)]
            let m: [Float] = [0.1 * Float(k), 4 - Float(k)]
            model.weight.assign(Tensor(shape: [2], scalars: w))
            model.running_mean.assign(Tensor(shape: [2], scalars: m))
            model.num_batches_tracked.assign(Tensor(shape: [], scalars: [Float(k)]))
            let d = min(0.9, Double(1 + k) / Double(10 + k))
            XCTAssertEqual(Double(ema.nextDecay), d, accuracy: 1e-7, "step \(k)")
            ema.update()
            for j in 0..<2 {
                expected[0][j] = d * expected[0][j] + (1 - d) * Double(w[j])
                expected[1][j] = d * expected[1][j] + (1 - d) * Double(m[j])
            }
            XCTAssertEqual(ema.updates, k)
        }
        let state = Dictionary(uniqueKeysWithValues: ema.averagedState())
        assertClose(state["weight"]!.scalars, expected[0], tolerance: 1e-5)
        assertClose(state["running_mean"]!.scalars, expected[1], tolerance: 1e-5)
        XCTAssertEqual(state["num_batches_tracked"]!.scalars, [40], "counters are copied, not averaged")
        // The warm-up ends at k = 80 for 0.9 (81/90); a fresh average starts at 2/11.
        XCTAssertEqual(ExponentialMovingAverage(module: model, decay: 0.5).nextDecay, 2.0 / 11, accuracy: 1e-7)
    }

    func testWithAveragedWeightsSwapsAndRestores() throws {
        let model = Averaged()
        let ema = ExponentialMovingAverage(module: model, decay: 0.5)
        model.weight.assign(Tensor(shape: [2], scalars: [11, 12]))
        ema.update()     // d = min(0.5, 2/11): a = 2/11 * [1, -2] + 9/11 * [11, 12]
        let averaged = ema.averagedState()[0].1.scalars
        let inside = ema.withAveragedWeights { model.weight.value.scalars }
        XCTAssertEqual(inside, averaged)
        XCTAssertEqual(model.weight.value.scalars, [11, 12], "the raw weights are back")
        struct Failure: Error {}
        XCTAssertThrowsError(try ema.withAveragedWeights { throw Failure() })
        XCTAssertEqual(model.weight.value.scalars, [11, 12], "restored after a throw too")
        XCTAssertTrue(model.weight.value.requiresGradient, "still a trainable leaf")
    }

    func testRestoreRejectsStateOfAnotherModule() throws {
        let ema = ExponentialMovingAverage(module: Averaged(), decay: 0.9)
        let good = ema.averagedState()
        XCTAssertThrowsError(try ema.restore(Array(good.dropLast()), updates: 3)) {
            XCTAssertTrue("\($0)".contains("num_batches_tracked"), "\($0)")
        }
        var misshaped = good
        misshaped[0].1 = Tensor(shape: [3], scalars: [1, 2, 3])
        XCTAssertThrowsError(try ema.restore(misshaped, updates: 3)) { XCTAssertTrue("\($0)".contains("weight"), "\($0)") }
        XCTAssertThrowsError(try ema.restore(good + [("extra", Tensor(shape: [1], scalars: [0]))], updates: 3)) {
            XCTAssertTrue("\($0)".contains("extra"), "\($0)")
        }
        XCTAssertThrowsError(try ema.restore(good, updates: -1))
        XCTAssertEqual(ema.updates, 0, "nothing changed")
        try ema.restore(good, updates: 7)
        XCTAssertEqual(ema.updates, 7)
    }

    func testCheckpointHoldsTheAverageUnderTheModelNamesAndResumesExactly() throws {
        let dir = makeTemporaryDirectory(self)
        let path = dir + "/ema.safetensors"
        let model = Tower()
        let optimizer = Adam(model, learningRate: 0.01)
        let ema = ExponentialMovingAverage(module: model, decay: 0.95)
        for _ in 0..<4 { trainStep(model, optimizer); ema.update() }
        try TrainingCheckpoint.save(model: model, optimizer: optimizer, ema: ema, metadata: ["epoch": "4"], to: path)

        let file = try SafeTensors.read(from: path)
        XCTAssertEqual(file.metadata["optimizer.ema.updates"], "4")
        XCTAssertEqual(file.metadata["optimizer.ema.decay"], "0.95")
        for (name, average) in ema.averagedState() {
            XCTAssertEqual(bits(file[name]!), bits(average), "\(name) holds the average")
        }
        for (name, raw) in model.stateDictionary() {
            XCTAssertEqual(bits(file["optimizer.ema.raw." + name]!), bits(raw), "\(name): raw weights kept for resuming")
        }
        // Inference loads (strictly) the averaged weights; the raw ones are skipped like the optimizer's.
        let deployed = Tower()
        XCTAssertTrue(try deployed.load(from: path).isExact)
        for ((name, a), (_, b)) in zip(deployed.stateDictionary(), ema.averagedState()) { XCTAssertEqual(bits(a), bits(b), name) }
        let plain = Tower()
        XCTAssertTrue(try TrainingCheckpoint.load(from: path, into: plain, optimizer: Adam(plain, learningRate: 0.01)).report.isExact)

        // Resuming restores the raw weights, the average and the count: training on gives the same bits.
        let resumed = Tower()
        let resumedOptimizer = Adam(resumed, learningRate: 0.01)
        let resumedEMA = ExponentialMovingAverage(module: resumed, decay: 0.95)
        let result = try TrainingCheckpoint.load(from: path, into: resumed, optimizer: resumedOptimizer, ema: resumedEMA)
        XCTAssertTrue(result.restoredEMA)
        XCTAssertEqual(result.metadata, ["epoch": "4", "format": "pt"])
        XCTAssertEqual(resumedEMA.updates, 4)
        for _ in 0..<3 {
            trainStep(model, optimizer); ema.update()
            trainStep(resumed, resumedOptimizer); resumedEMA.update()
        }
        for ((name, a), (_, b)) in zip(model.stateDictionary(), resumed.stateDictionary()) { XCTAssertEqual(bits(a), bits(b), name) }
        for ((name, a), (_, b)) in zip(ema.averagedState(), resumedEMA.averagedState()) { XCTAssertEqual(bits(a), bits(b), "EMA \(name)") }
    }

    func testLoadingWithAnEMARequiresEMAStateAndChangesNothingOnFailure() throws {
        let dir = makeTemporaryDirectory(self)
        let path = dir + "/plain.safetensors"
        let model = Tower()
        let optimizer = Adam(model, learningRate: 0.01)
        trainStep(model, optimizer)
        try TrainingCheckpoint.save(model: model, optimizer: optimizer, to: path)
        let target = Tower()
        let before = target.stateDictionary().map { bits($0.1) }
        let ema = ExponentialMovingAverage(module: target, decay: 0.9)
        XCTAssertThrowsError(try TrainingCheckpoint.load(from: path, into: target, optimizer: Adam(target, learningRate: 0.01), ema: ema)) {
            XCTAssertTrue("\($0)".contains("no EMA state"), "\($0)")
            XCTAssertTrue("\($0)".contains(path), "\($0)")
        }
        XCTAssertEqual(target.stateDictionary().map { bits($0.1) }, before)

        // A damaged count or a missing raw tensor is named and changes nothing.
        let ema2 = ExponentialMovingAverage(module: model, decay: 0.9)
        try TrainingCheckpoint.save(model: model, optimizer: optimizer, ema: ema2, to: path)
        var file = try SafeTensors.read(from: path)
        var metadata = file.metadata
        metadata["optimizer.ema.updates"] = "-3"
        try SafeTensors(tensors: file.tensors, metadata: metadata).write(to: path)
        XCTAssertThrowsError(try TrainingCheckpoint.load(from: path, into: target, optimizer: Adam(target, learningRate: 0.01), ema: ema)) {
            XCTAssertTrue("\($0)".contains("optimizer.ema.updates"), "\($0)")
        }
        metadata["optimizer.ema.updates"] = "1"
        file = try SafeTensors.read(from: path)
        let withoutRaw = file.tensors.filter { $0.name != "optimizer.ema.raw.head.bias" }
        try SafeTensors(tensors: withoutRaw, metadata: metadata).write(to: path)
        XCTAssertThrowsError(try TrainingCheckpoint.load(from: path, into: target, optimizer: Adam(target, learningRate: 0.01), ema: ema)) {
            XCTAssertTrue("\($0)".contains("head.bias"), "\($0)")
        }
        XCTAssertEqual(target.stateDictionary().map { bits($0.1) }, before)
        XCTAssertEqual(ema.updates, 0)
    }
}
