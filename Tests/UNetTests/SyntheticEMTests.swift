import Foundation
import Tensor
@testable import UNet
import XCTest

final class SyntheticEMTests: XCTestCase {
    func testDeterministicForTheSameSeed() {
        let a = SyntheticEM(width: 96, height: 80, seed: 42)
        let b = SyntheticEM(width: 96, height: 80, seed: 42)
        let c = SyntheticEM(width: 96, height: 80, seed: 43)
        let s1 = a.slice(3), s2 = b.slice(3)
        XCTAssertEqual(s1.image, s2.image)
        XCTAssertEqual(s1.label, s2.label)
        XCTAssertNotEqual(s1.image, c.slice(3).image)
        XCTAssertNotEqual(s1.image, a.slice(4).image)
        // Parallel stack generation gives exactly the per-slice result.
        let (volume, labels) = a.stacks(count: 5)
        XCTAssertEqual(volume.page(3), s1.image.map(Float.init))
        XCTAssertEqual(labels.page(3), s1.label.map(Float.init))
        let (tail, _) = a.stacks(count: 2, first: 3)
        XCTAssertEqual(tail.page(0), s1.image.map(Float.init))
    }

    func testLabelsAreBinaryAndMembraneFractionIsISBILike() {
        let em = SyntheticEM(width: 256, height: 256, seed: 7)
        let (volume, labels) = em.stacks(count: 6)
        XCTAssertEqual(volume.format, .uint8)
        XCTAssertTrue(labels.pixels.allSatisfy { $0 == 0 || $0 == 255 })
        let membrane = Double(labels.pixels.lazy.filter { $0 == 0 }.count) / Double(labels.pixels.count)
        print("SyntheticEM membrane fraction: \(membrane)")
        XCTAssertGreaterThan(membrane, 0.17)
        XCTAssertLessThan(membrane, 0.28)
        // Every slice has both classes, and membrane pixels are darker than cell pixels on average.
        for p in 0..<volume.pages {
            var sum = [0.0, 0.0], count = [0, 0]
            for (v, l) in zip(volume.page(p), labels.page(p)) {
                let k = l == 255 ? 1 : 0
                sum[k] += Double(v)
                count[k] += 1
            }
            XCTAssertGreaterThan(count[0], 0)
            XCTAssertGreaterThan(count[1], 0)
            XCTAssertLessThan(sum[0] / Double(count[0]) + 40, sum[1] / Double(count[1]), "page \(p)")
        }
        // Intensities use a good part of the 8-bit range, without saturating.
        let range = volume.valueRange!
        XCTAssertLessThan(range.lowerBound, 40)
        XCTAssertGreaterThan(range.upperBound, 180)
    }

    func testAnySizeIncludingTiny() {
        for (w, h) in [(1, 1), (7, 3), (33, 130)] {
            let s = SyntheticEM(width: w, height: h, seed: 1).slice(0)
            XCTAssertEqual(s.image.count, w * h)
            XCTAssertTrue(s.label.allSatisfy { $0 == 0 || $0 == 255 })
        }
    }

    /// The stacks generated in parallel hold the slices generated one by one.
    func testStacksHoldTheSlicesGeneratedOneByOne() {
        let em = SyntheticEM(width: 96, height: 80, seed: 2012)
        let (volume, labels) = em.stacks(count: 5)
        XCTAssertEqual([volume.pages, volume.width, volume.height], [5, 96, 80])
        for i in 0..<5 {
            let slice = em.slice(i)
            XCTAssertEqual(volume.page(i), slice.image.map(Float.init), "image \(i)")
            XCTAssertEqual(labels.page(i), slice.label.map(Float.init), "labels \(i)")
        }
    }

    func testWriteReadRoundTripInISBILayout() throws {
        let folder = makeTemporaryFolder(self).appendingPathComponent("synthetic")
        let em = SyntheticEM(width: 64, height: 48, seed: 5)
        try em.write(to: folder, trainCount: 6, testCount: 2)
        let names = Set(try FileManager.default.contentsOfDirectory(atPath: folder.path))
        XCTAssertEqual(names, ["train-volume.tif", "train-labels.tif", "test-volume.tif"])
        let volume = try ImageStack.read(from: folder.appendingPathComponent("train-volume.tif"))
        let labels = try ImageStack.read(from: folder.appendingPathComponent("train-labels.tif"))
        let test = try ImageStack.read(from: folder.appendingPathComponent("test-volume.tif"))
        let (v, l) = em.stacks(count: 6)
        XCTAssertEqual(volume, v)
        XCTAssertEqual(labels, l)
        XCTAssertEqual(test, em.stacks(count: 2, first: 6).volume)
        XCTAssertEqual(volume.format, .uint8)

        let data = try ISBIDataset(folder: folder)
        XCTAssertEqual(data.slices.count, 6)
        XCTAssertEqual(data.validationSlices, 5...5)
        XCTAssertEqual(data.train.count, 5)
        XCTAssertEqual(data.test.count, 2)
        let inMemory = try em.dataset(trainCount: 6, testCount: 2)
        XCTAssertEqual(inMemory.slices, data.slices)
        XCTAssertEqual(inMemory.test, data.test)
    }

    /// The preview PNGs of synthetic slices (written into UNET_PREVIEW_DIR when it is set, for a look at
    /// the generator, else into a temporary folder) decode to exactly the slice's image and labels.
    func testPreviewPNGsHoldTheSlices() throws {
        let dir = previewFolder()
        let em = SyntheticEM(width: 256, height: 256, seed: 2012)
        for i in 0..<2 {
            let s = em.slice(i)
            let imageURL = dir.appendingPathComponent("synthetic-\(i).png")
            let labelURL = dir.appendingPathComponent("synthetic-\(i)-label.png")
            try PNG.write(gray: s.image, width: 256, height: 256, to: imageURL)
            try PNG.write(gray: s.label, width: 256, height: 256, to: labelURL)
            XCTAssertEqual(try PNG.read(from: imageURL), PNGImage(width: 256, height: 256, channels: 1, pixels: s.image))
            XCTAssertEqual(try PNG.read(from: labelURL), PNGImage(width: 256, height: 256, channels: 1, pixels: s.label))
        }
    }

    /// A 256^2 crop of the real ISBI volume next to the synthetic previews, for comparing the two by eye;
    /// the crop must decode to the volume's pixels.
    func testPreviewOfTheRealVolumeCrop() throws {
        let real = ISBIDatasetTests.realDataFolder.appendingPathComponent("train-volume.tif")
        guard FileManager.default.fileExists(atPath: real.path) else {
            throw XCTSkip("the real ISBI 2012 volume is not at \(real.path)")
        }
        let stack = try ImageStack.read(from: real)
        try XCTSkipIf(stack.width < 256 || stack.height < 256, "\(real.path) is smaller than 256 x 256")
        let page = stack.page(0)
        let crop = (0..<(256 * 256)).map { UInt8(page[($0 / 256) * stack.width + $0 % 256]) }
        let url = previewFolder().appendingPathComponent("isbi-0-crop.png")
        try PNG.write(gray: crop, width: 256, height: 256, to: url)
        XCTAssertEqual(try PNG.read(from: url).pixels, crop)
    }

    private func previewFolder() -> URL {
        if let dir = ProcessInfo.processInfo.environment["UNET_PREVIEW_DIR"] {
            let url = URL(fileURLWithPath: dir)
            try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            return url
        }
        return makeTemporaryFolder(self)
    }
}
