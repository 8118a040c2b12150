@testable import UNet
import Foundation
import XCTest

/// Page-at-a-time reading and writing: the same pixels as whole-stack I/O, in any page order, and
/// no partial file when a writer is not finished.
final class TIFFPageStreamTests: XCTestCase {
    func pages(_ count: Int, width: Int, height: Int) -> [[Float]] {
        (0..<count).map { p in (0..<(width * height)).map { Float(($0 * 7 + p * 13) % 251) / 250 } }
    }

    func testPagesWrittenOneByOneReadBackInAnyOrder() throws {
        let folder = makeTemporaryFolder(self)
        let path = folder.appendingPathComponent("stream.tif").path
        let expected = pages(5, width: 33, height: 17)
        let writer = try TIFFPageWriter(path: path, width: 33, height: 17, pages: 5, format: .float32)
        for page in expected { try writer.write(page) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "the file appears only on finish()")
        try writer.finish()
        XCTAssertFalse(writer.isBigTIFF)

        let reader = try TIFFPageReader(path: path)
        XCTAssertEqual([reader.pages, reader.width, reader.height], [5, 33, 17])
        for page in [3, 0, 4, 1, 2, 2] { XCTAssertEqual(try reader.readPage(page), expected[page], "page \(page)") }
        XCTAssertEqual(try ImageStack.read(path: path).pixels, expected.flatMap { $0 })
    }

    func testBigTIFFLayoutReadsBack() throws {
        let folder = makeTemporaryFolder(self)
        let path = folder.appendingPathComponent("big.tif").path
        let expected = pages(3, width: 8, height: 8)
        let writer = try TIFFPageWriter(path: path, width: 8, height: 8, pages: 3, format: .float32, compression: .none, bigTIFF: true)
        for page in expected { try writer.write(page) }
        try writer.finish()
        let header = try Data(contentsOf: URL(fileURLWithPath: path)).prefix(4)
        XCTAssertEqual(Array(header), [0x49, 0x49, 43, 0], "a little-endian BigTIFF header")
        XCTAssertEqual(try ImageStack.read(path: path).pixels, expected.flatMap { $0 })
    }

    func testAnUnfinishedWriterLeavesNoFile() throws {
        let folder = makeTemporaryFolder(self)
        let path = folder.appendingPathComponent("partial.tif").path
        do {
            let writer = try TIFFPageWriter(path: path, width: 4, height: 4, pages: 3, format: .uint8)
            try writer.write([Float](repeating: 1, count: 16))
            XCTAssertThrowsError(try writer.finish()) { error in
                XCTAssertTrue("\(error)".contains("only 1 of the 3"), "\(error)")
            }
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), [], "no file, no temporary file")
    }

    func testWrongPagesAreRejectedWithTheFileNamed() throws {
        let folder = makeTemporaryFolder(self)
        let path = folder.appendingPathComponent("bad.tif").path
        let writer = try TIFFPageWriter(path: path, width: 4, height: 4, pages: 1, format: .float32)
        XCTAssertThrowsError(try writer.write([Float](repeating: 0, count: 15))) { error in
            XCTAssertTrue("\(error)".contains(path) && "\(error)".contains("expected 4 x 4 = 16"), "\(error)")
        }
        try writer.write([Float](repeating: 0, count: 16))
        XCTAssertThrowsError(try writer.write([Float](repeating: 0, count: 16))) { error in
            XCTAssertTrue("\(error)".contains("more than the 1 page(s)"), "\(error)")
        }
        XCTAssertThrowsError(try TIFFPageWriter(path: path, width: 0, height: 4, pages: 1, format: .float32))
        XCTAssertThrowsError(try TIFFPageWriter(path: folder.appendingPathComponent("no/such/folder/x.tif").path,
                                                width: 4, height: 4, pages: 1, format: .float32)) { error in
            XCTAssertTrue("\(error)".contains("cannot create a temporary file"), "\(error)")
        }
    }

    /// A page read alone is normalized exactly as the whole stack is.
    func testPageNormalizationMatchesTheWholeStack() throws {
        let folder = makeTemporaryFolder(self)
        for (format, scale) in [(ImageStack.SampleFormat.uint8, Float(200)), (.uint16, 60000), (.float32, 7)] {
            let path = folder.appendingPathComponent("n-\(format.rawValue).tif").path
            let raw = pages(3, width: 9, height: 5).map { $0.map { $0 * scale - (format == .float32 ? 2 : 0) } }
            let stack = ImageStack(width: 9, height: 5, pages: 3, pixels: raw.flatMap { $0 }, format: format)
            try stack.write(path: path)
            let whole = try ImageStack.read(path: path).normalized()
            let reader = try TIFFPageReader(path: path)
            let normalization = try IntensityNormalization(of: reader)
            for page in 0..<3 {
                var pixels = try reader.readPage(page)
                pixels.withUnsafeMutableBufferPointer { normalization.apply(to: $0) }
                XCTAssertEqual(pixels, whole.page(page), "\(format) page \(page)")
            }
        }
    }
}

/// NaN or infinite pixels in a float stack are named (file, page, position) before anything is
/// trained or predicted on them, instead of surfacing as a diverged loss or NaN probabilities.
final class NonFiniteIntensityTests: XCTestCase {
    func floatStack(pages: Int, bad: (page: Int, x: Int, y: Int, value: Float)?) -> ImageStack {
        var pixels = (0..<(pages * 12 * 10)).map { Float($0 % 17) / 16 }
        if let bad { pixels[bad.page * 120 + bad.y * 12 + bad.x] = bad.value }
        return ImageStack(width: 12, height: 10, pages: pages, pixels: pixels, format: .float32)
    }

    func testDatasetFolderWithANaNPixelIsRejectedNamingIt() throws {
        let folder = makeTemporaryFolder(self)
        try floatStack(pages: 4, bad: (2, 5, 7, .nan)).write(to: folder.appendingPathComponent(ISBIDataset.volumeFileName))
        let labels = ImageStack(width: 12, height: 10, pages: 4, pixels: (0..<480).map { $0 % 3 == 0 ? 0 : 255 }, format: .uint8)
        try labels.write(to: folder.appendingPathComponent(ISBIDataset.labelsFileName))
        XCTAssertThrowsError(try ISBIDataset(folder: folder)) { error in
            guard case let .nonFiniteIntensity(file, page, value, x, y)? = error as? ISBIDatasetError else {
                return XCTFail("\(error)")
            }
            XCTAssertTrue(file.hasSuffix(ISBIDataset.volumeFileName))
            XCTAssertEqual([page, x, y], [2, 5, 7])
            XCTAssertTrue(value.isNaN)
            XCTAssertTrue("\(error)".contains("page 2: pixel (x 5, y 7) is nan; expected finite intensities"), "\(error)")
        }
        XCTAssertNoThrow(try floatStack(pages: 2, bad: nil).requireFiniteIntensities(file: "ok.tif"))
    }

    func testPredictingAStackWithAnInfinitePixelStopsAtThatPage() throws {
        let folder = makeTemporaryFolder(self)
        let input = folder.appendingPathComponent("volume.tif").path
        let output = folder.appendingPathComponent("out.tif").path
        try floatStack(pages: 3, bad: (1, 0, 9, .infinity)).write(path: input)
        var rng = SeededGenerator(seed: 1)
        let segmenter = Segmenter(model: UNetModel(configuration: UNetConfiguration(baseFilters: 2, depth: 1), generator: &rng),
                                  tileSize: 16)
        XCTAssertThrowsError(try segmenter.predictPages(input: input, output: output)) { error in
            XCTAssertEqual(error as? ISBIDatasetError, .nonFiniteIntensity(file: input, page: 1, value: .infinity, x: 0, y: 9))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["volume.tif"], "no output, no temporary file")
    }
}
