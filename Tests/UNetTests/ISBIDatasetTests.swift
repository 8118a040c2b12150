import Foundation
import Tensor
@testable import UNet
import XCTest

final class ISBIDatasetTests: XCTestCase {
    /// `../shared/data/isbi2012` relative to the package root (two levels above this file's folder).
    static let realDataFolder: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/data/isbi2012")

    /// A small labeled stack: page p, pixel i has image value (p * 31 + i) % 256 and label 255 unless
    /// i % 5 == 0.
    private func writeFolder(pages: Int = 8, width: Int = 12, height: Int = 10, labelPages: Int? = nil,
                             labelSize: (Int, Int)? = nil, badLabel: (page: Int, index: Int, value: UInt8)? = nil,
                             test: Bool = true) throws -> URL {
        let folder = makeTemporaryFolder(self)
        let n = width * height
        let images = (0..<pages).map { p in (0..<n).map { UInt8((p * 31 + $0) % 256) } }
        let (lw, lh) = labelSize ?? (width, height)
        var labels = (0..<(labelPages ?? pages)).map { _ in (0..<(lw * lh)).map { $0 % 5 == 0 ? UInt8(0) : 255 } }
        if let badLabel { labels[badLabel.page][badLabel.index] = badLabel.value }
        try ImageStack(width: width, height: height, bytePages: images)
            .write(to: folder.appendingPathComponent(ISBIDataset.volumeFileName))
        try ImageStack(width: lw, height: lh, bytePages: labels)
            .write(to: folder.appendingPathComponent(ISBIDataset.labelsFileName))
        if test {
            try ImageStack(width: 7, height: 9, bytePages: [[UInt8](repeating: 51, count: 63)])
                .write(to: folder.appendingPathComponent(ISBIDataset.testFileName))
        }
        return folder
    }

    func testLoadsFolderNormalizesAndMapsLabels() throws {
        let folder = try writeFolder()
        let data = try ISBIDataset(folder: folder)
        XCTAssertEqual(data.slices.count, 8)
        XCTAssertEqual(data.width, 12)
        XCTAssertEqual(data.height, 10)
        let s = data.slices[3]
        XCTAssertEqual(s.index, 3)
        XCTAssertEqual(s.image[5], Float((3 * 31 + 5) % 256) / 255, accuracy: 1e-7)
        XCTAssertEqual(s.label?[0], ISBIDataset.membraneClass)
        XCTAssertEqual(s.label?[1], ISBIDataset.cellClass)
        XCTAssertEqual(ISBIDataset.cellFraction(of: data.slices), 0.8, accuracy: 1e-9)
        // The test volume may have its own size; it is unlabeled.
        XCTAssertEqual(data.test.count, 1)
        XCTAssertEqual(data.test[0].width, 7)
        XCTAssertNil(data.test[0].label)
        XCTAssertEqual(data.test[0].image[0], 0.2, accuracy: 1e-7)
        XCTAssertTrue(try ISBIDataset(folder: folder, loadTest: false).test.isEmpty)
        XCTAssertTrue(try ISBIDataset(folder: try writeFolder(test: false)).test.isEmpty)
    }

    func testDefaultAndCustomSplits() throws {
        XCTAssertEqual(ISBIDataset.defaultValidationSlices(pageCount: 30), 25...29)
        XCTAssertEqual(ISBIDataset.defaultValidationSlices(pageCount: 2), 1...1)
        let folder = try writeFolder(pages: 30, width: 4, height: 4, test: false)
        let data = try ISBIDataset(folder: folder)
        XCTAssertEqual(data.train.map(\.index), Array(0...24))
        XCTAssertEqual(data.validation.map(\.index), Array(25...29))
        let custom = try ISBIDataset(folder: folder, validationSlices: 0...9)
        XCTAssertEqual(custom.train.map(\.index), Array(10...29))
        XCTAssertEqual(custom.validation.map(\.index), Array(0...9))
        let middle = try ISBIDataset(folder: folder, validationSlices: 12...13)
        XCTAssertEqual(middle.train.count, 28)
        XCTAssertEqual(middle.validation.map(\.index), [12, 13])

        XCTAssertThrowsError(try ISBIDataset(folder: folder, validationSlices: 25...30)) { error in
            XCTAssertEqual("\(error)", "invalid train/validation split: validation slices 25...30 are outside the stack's pages 0...29")
        }
        XCTAssertThrowsError(try ISBIDataset(folder: folder, validationSlices: -1...3)) { error in
            XCTAssertTrue("\(error)".contains("outside the stack's pages 0...29"), "\(error)")
        }
        XCTAssertThrowsError(try ISBIDataset(folder: folder, validationSlices: 0...29)) { error in
            XCTAssertEqual("\(error)", "invalid train/validation split: validation slices 0...29 leave no training slice")
        }
    }

    func testTensors() throws {
        let data = try ISBIDataset(folder: try writeFolder(pages: 6, width: 5, height: 3))
        let x = data.train.imageTensor()
        let y = data.train.labelTensor()
        XCTAssertEqual(x.shape, [5, 1, 3, 5])
        XCTAssertEqual(y.shape, [5, 3, 5])
        XCTAssertEqual(Array(x.scalars[15..<30]), data.train[1].image)
        XCTAssertEqual(Array(y.scalars[0..<15]), data.train[0].labelClasses)
        XCTAssertEqual(data.validation[0].imageTensor.shape, [1, 1, 3, 5])
    }

    func testInvalidLabelValueNamesPageAndValue() throws {
        let folder = try writeFolder(badLabel: (page: 3, index: 2 * 12 + 7, value: 128))
        XCTAssertThrowsError(try ISBIDataset(folder: folder)) { error in
            XCTAssertEqual(error as? ISBIDatasetError,
                           .invalidLabelValue(file: folder.appendingPathComponent("train-labels.tif").path,
                                              page: 3, value: 128, x: 7, y: 2))
            XCTAssertTrue("\(error)".hasSuffix("train-labels.tif: page 3: label value 128 at (x 7, y 2); expected 0 (membrane) or 255 (cell)"),
                          "\(error)")
        }
    }

    func testLabelStackMustMatchVolume() throws {
        XCTAssertThrowsError(try ISBIDataset(folder: try writeFolder(labelPages: 7))) { error in
            XCTAssertTrue("\(error)".hasSuffix("train-labels.tif: has 7 page(s) but the volume has 8"), "\(error)")
        }
        XCTAssertThrowsError(try ISBIDataset(folder: try writeFolder(labelSize: (12, 9)))) { error in
            XCTAssertTrue("\(error)".hasSuffix("train-labels.tif: pages are 12 x 9 but the volume's are 12 x 10"), "\(error)")
        }
        XCTAssertThrowsError(try ISBIDataset(folder: try writeFolder(pages: 1, labelPages: 1))) { error in
            XCTAssertTrue("\(error)".contains("a stack of 1 page(s) cannot be split"), "\(error)")
        }
    }

    func testMissingFilesAreTIFFErrors() throws {
        let folder = makeTemporaryFolder(self)
        XCTAssertThrowsError(try ISBIDataset(folder: folder)) { error in
            let e = error as? TIFFErrorForTests
            XCTAssertEqual(e?.kind, .cannotOpen)
            XCTAssertTrue("\(error)".contains("train-volume.tif: cannot open"), "\(error)")
        }
    }

    func testRealISBIData() throws {
        let folder = Self.realDataFolder
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("train-labels.tif").path) else {
            print("skipping testRealISBIData: no ISBI 2012 data at \(folder.path)")
            throw XCTSkip("ISBI 2012 data not found at \(folder.path)")
        }
        let raw = try ImageStack.read(from: folder.appendingPathComponent("train-labels.tif"))
        XCTAssertEqual(raw.pages, 30)
        XCTAssertEqual(raw.format, .uint8)
        XCTAssertTrue(raw.pixels.allSatisfy { $0 == 0 || $0 == 255 })

        let data = try ISBIDataset(folder: folder)
        XCTAssertEqual(data.slices.count, 30)
        XCTAssertEqual(data.width, 512)
        XCTAssertEqual(data.height, 512)
        XCTAssertEqual(data.train.count, 25)
        XCTAssertEqual(data.validation.map(\.index), Array(25...29))
        XCTAssertEqual(data.test.count, 30)
        XCTAssertEqual(data.test[0].width, 512)
        let fraction = ISBIDataset.cellFraction(of: data.slices)
        print("ISBI 2012 cell fraction: \(fraction)")
        XCTAssertEqual(fraction, 0.78, accuracy: 0.02)
        let lo = data.slices.map { $0.image.min()! }.min()!
        let hi = data.slices.map { $0.image.max()! }.max()!
        let range = lo...hi
        XCTAssertGreaterThanOrEqual(range.lowerBound, 0)
        XCTAssertLessThanOrEqual(range.upperBound, 1)
        XCTAssertGreaterThan(range.upperBound - range.lowerBound, 0.5)
    }
}
