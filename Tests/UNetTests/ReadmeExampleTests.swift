import XCTest

// The README's library example, verbatim between the markers below; `testReadmeShowsThisExample`
// fails when the two drift apart, so the README's code is always code that compiles and runs.

// README-EXAMPLE-BEGIN
import Foundation
import UNet

func trainAndSegment() throws {
    // 12 synthetic labelled slices of 128 x 128 (slices 10-11 held out for validation); for the
    // real stacks: try ISBIDataset(folder: URL(fileURLWithPath: "path/to/isbi2012")).
    let data = try SyntheticEM(width: 128, height: 128, seed: 1).dataset(trainCount: 12)

    var rng = SeededGenerator(seed: 0)
    let model = UNetModel(configuration: UNetConfiguration(baseFilters: 4, depth: 3), generator: &rng)
    var training = TrainingConfiguration()
    training.epochs = 2
    training.tileSize = 64
    training.learningRate = 1e-3
    let runFolder = FileManager.default.temporaryDirectory.appendingPathComponent("unet-library-example")
    let trainer = try Trainer(model: model, trainSlices: data.train, validationSlices: data.validation,
                              configuration: training, runFolder: runFolder)
    trainer.onEvent = { event in
        if case .epoch(let record) = event { print(record.tutorialLine) }
    }
    try trainer.run()

    // Overlap-tile inference on images of any size, and the challenge's scores.
    let segmenter = Segmenter(model: model, tileSize: 128)
    let scores = segmenter.evaluate(data.validation)
    print("mean Jaccard \(scores.meanJaccard), V_rand \(scores.vRand ?? .nan), V_info \(scores.vInfo ?? .nan)")

    // Cell probabilities (1 = cell) for a stack, written as 32-bit float TIFF.
    let (volume, _) = SyntheticEM(width: 96, height: 80, seed: 2).stacks(count: 3)
    let probabilities = segmenter.predict(stack: volume.normalized())
    try probabilities.write(to: runFolder.appendingPathComponent("probabilities.tif"), format: .float32)
}
// README-EXAMPLE-END

final class ReadmeExampleTests: XCTestCase {
    func testExampleRuns() throws {
        try trainAndSegment()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("unet-library-example")
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("last.safetensors").path))
        let written = try ImageStack.read(from: folder.appendingPathComponent("probabilities.tif"))
        XCTAssertEqual([written.width, written.height, written.pages], [96, 80, 3])
    }

    func testReadmeShowsThisExample() throws {
        let testFile = try String(contentsOfFile: #filePath, encoding: .utf8)
        let begin = testFile.range(of: "// README-EXAMPLE-BEGIN\n")!, end = testFile.range(of: "// README-EXAMPLE-END")!
        let example = String(testFile[begin.upperBound..<end.lowerBound])
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        guard let marker = readme.range(of: "<!-- example: library -->") else {
            return XCTFail("README.md has no '<!-- example: library -->' marker")
        }
        let afterMarker = readme[marker.upperBound...]
        guard let open = afterMarker.range(of: "```swift\n"), let close = afterMarker.range(of: "```", range: open.upperBound..<afterMarker.endIndex) else {
            return XCTFail("README.md has no swift block after the example marker")
        }
        XCTAssertEqual(String(afterMarker[open.upperBound..<close.lowerBound]), example,
                       "README.md's library example differs from Tests/UNetTests/ReadmeExampleTests.swift")
    }
}
