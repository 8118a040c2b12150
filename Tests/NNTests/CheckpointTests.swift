import Foundation
import NN
import XCTest

/// Tower with a differently shaped head, an extra parameter and no buffer: for strict/non-strict tests.
final class MutatedTower: Module {
    let stem = Affine(inputs: 3, outputs: 4, seed: 11)
    let blocks = [Affine(inputs: 4, outputs: 4, seed: 12), Affine(inputs: 4, outputs: 4, seed: 13)]
    let head = Affine(inputs: 4, outputs: 3, seed: 14)
    let extra = Parameter(Tensor.zeros([5]))
}

final class CheckpointTests: XCTestCase {
    let input = Tensor(shape: [4, 3], scalars: [1, 2, 3, -1, 0.5, 2, 0, 0, 1, -2, 1, 0.25])
    let target = Tensor(shape: [4, 2], scalars: [1, 0, 0, 1, 1, 1, -1, 0])

    /// One training step on a fixed batch (squared error).
    func trainStep(_ model: Tower, _ optimizer: Optimizer) {
        model.zeroGradients()
        let diff = model(input) - target
        (diff * diff).mean().backward()
        optimizer.step()
    }

    func testModuleSaveLoadRoundTripsBitExactly() throws {
        let dir = makeTemporaryDirectory(self)
        let model = Tower()
        let optimizer = Adam(model, learningRate: 0.01)
        for _ in 0..<3 { trainStep(model, optimizer) }
        model.statistics.assign(Tensor(shape: [4], scalars: [.pi, -0.0, Float(bitPattern: 0x0001_1d7c) /* subnormal */, 7]))
        try model.save(to: dir + "/m.safetensors", metadata: ["epoch": "3"])

        let file = try SafeTensors.read(from: dir + "/m.safetensors")
        XCTAssertEqual(file.names, model.stateDictionary().map(\.0))
        XCTAssertEqual(file.metadata, ["epoch": "3", "format": "pt"])

        let restored = Tower()
        XCTAssertNotEqual(bits(restored.stem.weight.value), bits(model.stem.weight.value))
        let report = try restored.load(from: dir + "/m.safetensors")
        XCTAssertTrue(report.isExact)
        XCTAssertEqual(report.loaded, model.stateDictionary().map(\.0))
        for ((name, a), (_, b)) in zip(model.stateDictionary(), restored.stateDictionary()) {
            XCTAssertEqual(bits(a), bits(b), name)
        }
        XCTAssertTrue(restored.stem.weight.value.requiresGradient, "loaded parameters stay tape leaves")
        XCTAssertEqual(bits(restored(input)), bits(model(input)))
    }

    func testStrictLoadingThrowsAndChangesNothingNonStrictLoadsMatches() throws {
        let dir = makeTemporaryDirectory(self)
        let path = dir + "/t.safetensors"
        try Tower().save(to: path)
        let mutated = MutatedTower()
        let before = mutated.stateDictionary().map { bits($0.1) }
        let headBefore = bits(mutated.head.weight.value)
        let expected = StateLoadReport(
            loaded: [], missing: ["extra"], unexpected: ["running_mean"],
            shapeMismatches: [ShapeMismatch(name: "head.weight", expected: [3, 4], found: [2, 4]),
                              ShapeMismatch(name: "head.bias", expected: [3], found: [2])])
        XCTAssertThrowsError(try mutated.load(from: path)) { error in
            XCTAssertEqual(error as? CheckpointError, CheckpointError(path: path, problem: .stateMismatch(expected)))
            XCTAssertTrue("\(error)".contains("missing: extra"), "\(error)")
        }
        XCTAssertEqual(mutated.stateDictionary().map { bits($0.1) }, before, "strict failure must not change the module")

        let report = try mutated.load(from: path, strict: false)
        XCTAssertEqual(report.loaded, ["stem.weight", "stem.bias", "blocks.0.weight", "blocks.0.bias",
                                       "blocks.1.weight", "blocks.1.bias"])
        XCTAssertEqual(report.missing, ["extra"])
        XCTAssertEqual(report.unexpected, ["running_mean"])
        XCTAssertEqual(report.shapeMismatches.map(\.name), ["head.weight", "head.bias"])
        XCTAssertFalse(report.isExact)
        XCTAssertEqual(bits(mutated.stem.weight.value), bits(Tower().stem.weight.value))
        XCTAssertEqual(bits(mutated.head.weight.value), headBefore, "mismatched tensors are not assigned")
    }

    func testTrainingCheckpointRestoresModelAndOptimizerExactly() throws {
        let dir = makeTemporaryDirectory(self)
        let path = dir + "/train.safetensors"
        for makeOptimizer in [{ (m: Tower) -> Optimizer in Adam(m, learningRate: 0.01, weightDecay: 1e-3) },
                              { (m: Tower) -> Optimizer in AdamW(m, learningRate: 0.01) },
                              { (m: Tower) -> Optimizer in SGD(m, learningRate: 0.05, momentum: 0.9, nesterov: true) }] {
            let model = Tower()
            let optimizer = makeOptimizer(model)
            for _ in 0..<3 { trainStep(model, optimizer) }
            optimizer.learningRate *= 0.5
            try TrainingCheckpoint.save(model: model, optimizer: optimizer, metadata: ["epoch": "3", "config": "{\"depth\":2}"],
                                        to: path)

            let file = try SafeTensors.read(from: path)
            let kind = optimizer.kind
            XCTAssertEqual(file.metadata["optimizer.kind"], kind)
            XCTAssertNotNil(file.metadata["optimizer.\(kind).learning_rate"])
            let slot = kind == "sgd" ? "momentum_buffer" : "m"
            XCTAssertNotNil(file["optimizer.\(kind).\(slot).stem.weight"])

            let resumedModel = Tower()
            let resumedOptimizer = makeOptimizer(resumedModel)
            let result = try TrainingCheckpoint.load(from: path, into: resumedModel, optimizer: resumedOptimizer)
            XCTAssertTrue(result.report.isExact)
            XCTAssertTrue(result.restoredOptimizer)
            XCTAssertEqual(result.metadata, ["epoch": "3", "config": "{\"depth\":2}", "format": "pt"])
            XCTAssertEqual(resumedOptimizer.learningRate, optimizer.learningRate)
            for ((name, a), (_, b)) in zip(optimizer.exportState().tensors, resumedOptimizer.exportState().tensors) {
                XCTAssertEqual(bits(a), bits(b), name)
            }
            XCTAssertEqual(optimizer.exportState().scalars, resumedOptimizer.exportState().scalars)

            // Training on from the checkpoint gives the same bits as training on without stopping.
            for _ in 0..<2 {
                trainStep(model, optimizer)
                trainStep(resumedModel, resumedOptimizer)
            }
            for ((name, a), (_, b)) in zip(model.stateDictionary(), resumedModel.stateDictionary()) {
                XCTAssertEqual(bits(a), bits(b), "\(kind): \(name)")
            }

            // A plain model load of a training checkpoint ignores the optimizer tensors.
            XCTAssertTrue(try Tower().load(from: path).isExact)
        }
    }

    func testTrainingCheckpointRejectsWrongOrMissingOptimizerState() throws {
        let dir = makeTemporaryDirectory(self)
        let path = dir + "/x.safetensors"
        let model = Tower()
        let adam = Adam(model)
        trainStep(model, adam)
        try TrainingCheckpoint.save(model: model, optimizer: adam, to: path)
        XCTAssertThrowsError(try TrainingCheckpoint.load(from: path, into: Tower(), optimizer: SGD(Tower(), learningRate: 1))) {
            guard case .optimizerState(let message) = ($0 as? CheckpointError)?.problem else { return XCTFail("\($0)") }
            XCTAssertTrue(message.contains("'adam'"), message)
        }
        // Optimizer state whose parameter names do not fit the model is rejected before the model changes.
        let other = MutatedTower()
        let before = bits(other.stem.weight.value)
        XCTAssertThrowsError(try TrainingCheckpoint.load(from: path, into: other, optimizer: Adam(other), strict: false))
        XCTAssertEqual(bits(other.stem.weight.value), before)

        try TrainingCheckpoint.save(model: model, to: path)
        XCTAssertThrowsError(try TrainingCheckpoint.load(from: path, into: Tower(), optimizer: Adam(Tower())))
        let lenient = try TrainingCheckpoint.load(from: path, into: Tower(), optimizer: Adam(Tower()), strict: false)
        XCTAssertFalse(lenient.restoredOptimizer)
        XCTAssertThrowsError(try TrainingCheckpoint.save(model: model, metadata: ["optimizer.kind": "x"], to: path))
    }
}
