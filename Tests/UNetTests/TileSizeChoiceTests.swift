import Foundation
@testable import UNet
import XCTest

/// The default tile sides of `predict`, `evaluate` and the trainer's validation.
final class TileSizeChoiceTests: XCTestCase {
    func testPartialTilesKeepACoreAsWideAsTheMargin() {
        XCTAssertEqual(Segmenter.partialTileSize(configuration: UNetConfiguration(depth: 4)), 512)
        XCTAssertEqual(Segmenter.partialTileSize(configuration: UNetConfiguration(depth: 5)), 704)
        for depth in 1...6 {
            let configuration = UNetConfiguration(depth: depth)
            let geometry = configuration.tileGeometry
            let tile = Segmenter.partialTileSize(configuration: configuration)
            XCTAssertGreaterThanOrEqual(tile, 512, "depth \(depth)")
            XCTAssertGreaterThanOrEqual(tile - 2 * geometry.contextMargin, geometry.contextMargin, "depth \(depth)")
            XCTAssertEqual(tile % geometry.alignment, 0, "depth \(depth): tile \(tile) is off the pooling grid")
        }
    }

    func testAutomaticTileIsTheWholePageWhenItFitsTheBudget() {
        let depth4 = UNetConfiguration(baseFilters: 16, depth: 4), depth5 = UNetConfiguration(baseFilters: 16, depth: 5)
        XCTAssertEqual(depth4.tileGeometry.contextMargin, 112)
        XCTAssertEqual(depth5.tileGeometry.contextMargin, 224)
        XCTAssertEqual(Segmenter.automaticTileSize(width: 512, height: 512, configuration: depth4), 512 + 224)
        XCTAssertEqual(Segmenter.automaticTileSize(width: 512, height: 300, configuration: depth5,
                                                   memoryBudgetBytes: Trainer.validationTileBudgetBytes), 512 + 448)
        // Too little memory: tiles, wider than 512 only where 512 would keep less than the margin.
        XCTAssertEqual(Segmenter.automaticTileSize(width: 512, height: 512, configuration: depth4, memoryBudgetBytes: 1), 512)
        XCTAssertEqual(Segmenter.automaticTileSize(width: 512, height: 512, configuration: depth5, memoryBudgetBytes: 1), 704)
        // Base 32 at depth 4 does not fit the trainer's budget whole.
        XCTAssertEqual(Segmenter.automaticTileSize(width: 512, height: 512, configuration: UNetConfiguration(baseFilters: 32),
                                                   memoryBudgetBytes: Trainer.validationTileBudgetBytes), 512)
    }

    static let data = try! SyntheticEM(width: 40, height: 24, seed: 5).dataset(trainCount: 3)

    func makeTrainer(validationTileSize: Int?) throws -> Trainer {
        var rng = SeededGenerator(seed: 1)
        let model = UNetModel(configuration: UNetConfiguration(baseFilters: 4, depth: 2), generator: &rng)
        var c = TrainingConfiguration()
        c.epochs = 1; c.tileSize = 16; c.batchSize = 1; c.previewEvery = 0; c.validationTileSize = validationTileSize
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("unet-tile-\(UUID().uuidString)")
        return try Trainer(model: model, trainSlices: Self.data.train, validationSlices: Self.data.validation,
                           configuration: c, runFolder: folder)
    }

    func testTrainerValidatesWithTheConfiguredOrTheAutomaticTile() throws {
        XCTAssertEqual(try makeTrainer(validationTileSize: 48).validationTileSize, 48)
        let automatic = try makeTrainer(validationTileSize: nil)
        let margin = automatic.model.configuration.tileGeometry.contextMargin
        XCTAssertEqual(automatic.validationTileSize, 40 + 2 * margin)
    }

    func testConfigurationStoresAnAutomaticValidationTileAsAbsent() throws {
        var c = TrainingConfiguration()
        c.validationTileSize = nil
        let json = try JSONEncoder().encode(c)
        XCTAssertFalse(String(decoding: json, as: UTF8.self).contains("validationTileSize"))
        XCTAssertEqual(try JSONDecoder().decode(TrainingConfiguration.self, from: json), c)
        c.validationTileSize = 96
        XCTAssertEqual(try JSONDecoder().decode(TrainingConfiguration.self, from: JSONEncoder().encode(c)).validationTileSize, 96)
        c.validationTileSize = 8
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("validationTileSize"), "\($0)") }
    }
}
