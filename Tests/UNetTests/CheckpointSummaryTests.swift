import Foundation
import NN
@testable import UNet
import XCTest

final class CheckpointSummaryTests: XCTestCase {
    static let data = try! SyntheticEM(width: 32, height: 32, seed: 4).dataset(trainCount: 6)
    static let configuration = UNetConfiguration(baseFilters: 2, depth: 2)

    /// A trainer over the small dataset whose model has taken one optimizer step (so the file holds
    /// optimizer state), and the checkpoint it wrote.
    private func trainerCheckpoint(dataDescription: String = "data/synthetic") throws -> (Trainer, URL) {
        let folder = makeTemporaryFolder(self)
        var rng = SeededGenerator(seed: 1)
        let model = UNetModel(configuration: Self.configuration, generator: &rng)
        var training = TrainingConfiguration()
        training.epochs = 3
        training.tileSize = 32
        training.batchSize = 2
        let trainer = try Trainer(model: model, trainSlices: Self.data.train, validationSlices: Self.data.validation,
                                  configuration: training, runFolder: folder, dataDescription: dataDescription)
        let sampler = BatchSampler(slices: Self.data.train, batchSize: 2, inputSize: 32, outputSize: 32, augment: false,
                                   loss: .crossEntropy, seed: 1)
        _ = trainer.trainStep(sampler.batch(epoch: 1, index: 0))
        try trainer.writeConfigJSON()
        try trainer.saveCheckpoint(to: trainer.lastCheckpoint)
        return (trainer, trainer.lastCheckpoint)
    }

    /// A checkpoint of a fresh base-2 model with the given metadata.
    private func checkpoint(metadata: [String: String]) throws -> URL {
        var rng = SeededGenerator(seed: 2)
        let model = UNetModel(configuration: Self.configuration, generator: &rng)
        let url = makeTemporaryFolder(self).appendingPathComponent("model.safetensors")
        try TrainingCheckpoint.save(model: model, metadata: metadata, to: url.path)
        return url
    }

    private func json<T: Encodable>(_ value: T) -> String {
        String(decoding: try! JSONEncoder().encode(value), as: UTF8.self)
    }

    private func assertCheckpointError(_ expected: UNetCheckpointError.Problem, path: String, mentioning fragments: [String],
                                       file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard let error = error as? UNetCheckpointError else {
                return XCTFail("expected a UNetCheckpointError, got \(error)", file: file, line: line)
            }
            XCTAssertEqual(error.problem, expected, file: file, line: line)
            XCTAssertEqual(error.path, path, file: file, line: line)
            XCTAssertTrue(error.description.hasPrefix(path + ": "), error.description, file: file, line: line)
            XCTAssertFalse(error.description.contains("\n"), "not one line: \(error)", file: file, line: line)
            for fragment in fragments {
                XCTAssertTrue(error.description.contains(fragment), "'\(error)' lacks '\(fragment)'", file: file, line: line)
            }
        }
    }

    // MARK: a trainer's checkpoint

    func testSummaryOfATrainerCheckpoint() throws {
        let (trainer, url) = try trainerCheckpoint()
        let summary = try CheckpointSummary.load(from: url)
        XCTAssertEqual(summary.path, url.path)
        XCTAssertEqual(summary.model, Self.configuration)
        XCTAssertEqual(summary.training, trainer.configuration)
        XCTAssertEqual(summary.epoch, 0)
        XCTAssertEqual(summary.completedEpochs, 0)
        XCTAssertEqual(summary.history, [])
        XCTAssertNil(summary.bestEpoch)
        XCTAssertNil(summary.bestMeanJaccard)
        XCTAssertEqual(summary.dataDescription, "data/synthetic")
        XCTAssertEqual(summary.recordedDataFolder?.path, URL(fileURLWithPath: "data/synthetic").path)
        XCTAssertEqual(summary.parameterCount, trainer.model.parameterCount)
        XCTAssertEqual(summary.modelTensors.map(\.name), trainer.model.stateDictionary().map(\.0))
        XCTAssertTrue(summary.hasOptimizerState)
        XCTAssertEqual(summary.runFolder.path, trainer.runFolder.standardizedFileURL.path)
        XCTAssertEqual(summary.recordedValidationSlices, 5...5)
        XCTAssertEqual(try summary.resumableTrainingConfiguration(), trainer.configuration)
    }

    func testMakeModelRestoresTheWeights() throws {
        let (trainer, url) = try trainerCheckpoint()
        let model = try CheckpointSummary.load(from: url).makeModel()
        XCTAssertEqual(model.configuration, Self.configuration)
        let expected = trainer.model.stateDictionary()
        let restored = model.stateDictionary()
        XCTAssertEqual(restored.map(\.0), expected.map(\.0))
        for ((name, a), (_, b)) in zip(restored, expected) {
            XCTAssertEqual(a.scalars, b.scalars, name)
        }
    }

    func testBestEpochHistoryAndNoRecordedDataOrSlices() throws {
        let record = EpochRecord(epoch: 1, trainCost: 0.5, validationCost: 0.4, validationAccuracy: 0.8,
                                 validationJaccard: [0.6, 0.7], seconds: 1, learningRate: 1e-3)
        let url = try checkpoint(metadata: [
            MetadataKey.model: json(Self.configuration), MetadataKey.history: json([record]),
            MetadataKey.bestEpoch: "1", MetadataKey.bestMeanJaccard: "0.65", MetadataKey.data: "",
        ])
        let summary = try CheckpointSummary.load(from: url)
        XCTAssertEqual(summary.history, [record])
        XCTAssertNil(summary.epoch)
        XCTAssertEqual(summary.completedEpochs, 1, "without unet.epoch the history counts")
        XCTAssertEqual(summary.bestEpoch, 1)
        XCTAssertEqual(summary.bestMeanJaccard, 0.65)
        XCTAssertNil(summary.dataDescription)
        XCTAssertNil(summary.recordedDataFolder)
        XCTAssertNil(summary.recordedValidationSlices, "no config.json next to the file")
        XCTAssertFalse(summary.hasOptimizerState)
    }

    func testUnreadableInformationalMetadataReadsAsAbsent() throws {
        let url = try checkpoint(metadata: [
            MetadataKey.model: json(Self.configuration), MetadataKey.epoch: "three", MetadataKey.history: "[{",
            MetadataKey.bestMeanJaccard: "high",
        ])
        let summary = try CheckpointSummary.load(from: url)
        XCTAssertNil(summary.epoch)
        XCTAssertEqual(summary.history, [])
        XCTAssertNil(summary.bestMeanJaccard)
        XCTAssertNil(summary.training)
    }

    // MARK: bad checkpoints

    func testNoModelConfiguration() throws {
        var rng = SeededGenerator(seed: 2)
        let url = makeTemporaryFolder(self).appendingPathComponent("plain.safetensors")
        try UNetModel(configuration: Self.configuration, generator: &rng).save(to: url.path)
        assertCheckpointError(.noModelConfiguration, path: url.path, mentioning: ["not a swift-unet checkpoint", "'unet.model'"]) {
            _ = try CheckpointSummary.load(from: url)
        }
    }

    func testUnreadableModelConfiguration() throws {
        let url = try checkpoint(metadata: [MetadataKey.model: "{\"baseFilters\": \"many\"}"])
        assertCheckpointError(.unreadableMetadata(key: MetadataKey.model, expected: "a U-Net configuration as JSON"),
                              path: url.path, mentioning: ["unreadable 'unet.model'"]) {
            _ = try CheckpointSummary.load(from: url)
        }
    }

    func testInvalidModelConfiguration() throws {
        var invalid = Self.configuration
        invalid.depth = 9
        let url = try checkpoint(metadata: [MetadataKey.model: json(invalid)])
        let expected = UNetConfigurationError(field: "depth", value: "9", expected: "1...6")
        assertCheckpointError(.invalidModelConfiguration(expected), path: url.path, mentioning: ["depth = 9, expected 1...6"]) {
            _ = try CheckpointSummary.load(from: url)
        }
    }

    func testWeightsOfAnotherArchitectureDoNotFit() throws {
        var described = Self.configuration
        described.baseFilters = 4
        let url = try checkpoint(metadata: [MetadataKey.model: json(described)])
        let summary = try CheckpointSummary.load(from: url)
        XCTAssertThrowsError(try summary.makeModel()) { error in
            guard let error = error as? UNetCheckpointError,
                  case .weightsDoNotFit(let model, .stateMismatch(let report)) = error.problem else {
                return XCTFail("expected weightsDoNotFit with a state mismatch, got \(error)")
            }
            XCTAssertEqual(model, described)
            XCTAssertFalse(report.shapeMismatches.isEmpty)
            XCTAssertTrue(error.description.hasPrefix(url.path + ": the weights do not fit the model its metadata describes"),
                          error.description)
            XCTAssertTrue(error.description.contains("U-Net base 4"), error.description)
            XCTAssertTrue(error.description.contains("tensor(s) of another shape, e.g. encoder.0.conv1.weight"), error.description)
            XCTAssertFalse(error.description.contains("\n"), error.description)
        }
    }

    /// Fuzzing regression (docs/RELIABILITY.md): a 4 kB checkpoint whose metadata describes the largest
    /// architecture the configuration allows (base 256, depth 6) made `makeModel` build billions of
    /// weights before it compared them with the file's (out of memory under libFuzzer's 2 GB limit).
    func testMetadataOfAHugeArchitectureIsRejectedBeforeBuildingIt() throws {
        var described = Self.configuration
        described.baseFilters = 256
        described.depth = 6
        let url = try checkpoint(metadata: [MetadataKey.model: json(described)])
        let summary = try CheckpointSummary.load(from: url)
        let held = summary.modelTensors.reduce(0) { $0 + $1.shape.reduce(1, *) }
        assertCheckpointError(.tooFewWeights(model: described, held: held, needed: 9 * 16384 * 16384), path: url.path,
                              mentioning: ["the weights do not fit the model its metadata describes", "U-Net base 256",
                                           "the file holds \(held) model weights, its bottleneck alone needs 2415919104"]) {
            _ = try summary.makeModel()
        }
    }

    func testNotResumableWithoutAValidTrainingConfiguration() throws {
        let model = json(Self.configuration)
        let missing = try checkpoint(metadata: [MetadataKey.model: model])
        assertCheckpointError(.noTrainingConfiguration, path: missing.path, mentioning: ["not a training checkpoint", "cannot be resumed"]) {
            _ = try CheckpointSummary.load(from: missing).resumableTrainingConfiguration()
        }
        assertCheckpointError(.noTrainingConfiguration, path: missing.path, mentioning: []) {
            _ = try Trainer.resuming(from: missing, trainSlices: Self.data.train, validationSlices: Self.data.validation,
                                     runFolder: makeTemporaryFolder(self))
        }

        let unreadable = try checkpoint(metadata: [MetadataKey.model: model, MetadataKey.training: "[]"])
        assertCheckpointError(.unreadableMetadata(key: MetadataKey.training, expected: "a training configuration as JSON"),
                              path: unreadable.path, mentioning: ["unreadable 'unet.training'"]) {
            _ = try CheckpointSummary.load(from: unreadable).resumableTrainingConfiguration()
        }

        var training = TrainingConfiguration()
        training.epochs = 0
        let invalid = try checkpoint(metadata: [MetadataKey.model: model, MetadataKey.training: json(training)])
        let expected = TrainingConfigurationError(field: "epochs", value: "0", expected: ">= 1")
        assertCheckpointError(.invalidTrainingConfiguration(expected), path: invalid.path, mentioning: ["epochs = 0"]) {
            _ = try CheckpointSummary.load(from: invalid).resumableTrainingConfiguration()
        }
    }

    func testFilesThatAreNotSafetensors() throws {
        let folder = makeTemporaryFolder(self)
        let missing = folder.appendingPathComponent("missing.safetensors")
        XCTAssertThrowsError(try CheckpointSummary.load(from: missing)) { error in
            guard let error = error as? SafeTensorsError, case .cannotOpen = error.problem else {
                return XCTFail("expected SafeTensorsError.cannotOpen, got \(error)")
            }
            XCTAssertTrue(error.description.contains(missing.path), error.description)
        }
        let text = folder.appendingPathComponent("text.safetensors")
        try Data("hello".utf8).write(to: text)
        XCTAssertThrowsError(try CheckpointSummary.load(from: text)) { error in
            guard let error = error as? SafeTensorsError, case .fileTooShort = error.problem else {
                return XCTFail("expected SafeTensorsError.fileTooShort, got \(error)")
            }
            XCTAssertTrue(error.description.contains(text.path), error.description)
        }
    }
}
