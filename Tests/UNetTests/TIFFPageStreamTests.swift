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
