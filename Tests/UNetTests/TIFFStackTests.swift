import CTIFF
import Foundation
import Tensor
@testable import UNet
import XCTest

final class TIFFStackTests: XCTestCase {
    private func randomBytes(_ n: Int, seed: UInt64) -> [UInt8] {
        var g = SeededGenerator(seed: seed)
        return (0..<n).map { _ in UInt8(truncatingIfNeeded: g.next()) }
    }

    private func write(_ bytes: [UInt8], to url: URL) {
        try! Data(bytes).write(to: url)
    }

    // MARK: round trips

    func testUInt8RoundTripMultiPageOddSize() throws {
        let dir = makeTemporaryFolder(self)
        let (w, h) = (37, 23)
        let pages = (0..<3).map { randomBytes(w * h, seed: UInt64($0)) }
        let stack = ImageStack(width: w, height: h, bytePages: pages)
        let url = dir.appendingPathComponent("stack8.tif")
        try stack.write(to: url)
        let back = try ImageStack.read(from: url)
        XCTAssertEqual(back, stack)
        XCTAssertEqual(back.format, .uint8)
        XCTAssertEqual(back.pages, 3)
        XCTAssertEqual(back.page(2), pages[2].map(Float.init))
        XCTAssertEqual(back[page: 1, y: 5, x: 7], Float(pages[1][5 * w + 7]))
        // Atomic write: no temporary files left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["stack8.tif"])
        // Writing again replaces the file.
        var changed = stack
        changed[page: 0, y: 0, x: 0] = 255 - changed[page: 0, y: 0, x: 0]
        try changed.write(to: url)
        XCTAssertEqual(try ImageStack.read(from: url), changed)
    }

    func testUInt8WriteRoundsAndClamps() throws {
        let url = makeTemporaryFolder(self).appendingPathComponent("clamp.tif")
        let stack = ImageStack(width: 5, height: 1, pages: 1, pixels: [-3, 0.4, 0.6, 254.5, 1000])
        try stack.write(to: url, format: .uint8)
        XCTAssertEqual(try ImageStack.read(from: url).pixels, [0, 0, 1, 255, 255])
    }

    func testFloat32RoundTripWithCompressions() throws {
        let dir = makeTemporaryFolder(self)
        var g = SeededGenerator(seed: 7)
        let (w, h, n) = (31, 17, 4)
        let pixels = (0..<(w * h * n)).map { _ in Float(g.nextNormal()) * 100 }
        let stack = ImageStack(width: w, height: h, pages: n, pixels: pixels, format: .float32)
        for compression in TIFFCompression.allCases {
            let url = dir.appendingPathComponent("f32-\(compression).tif")
            try stack.write(to: url, compression: compression)
            let back = try ImageStack.read(from: url)
            XCTAssertEqual(back, stack, "compression \(compression)")
            XCTAssertEqual(back.format, .float32)
        }
    }

    func testUInt16RoundTripThroughOwnWriter() throws {
        let url = makeTemporaryFolder(self).appendingPathComponent("u16.tif")
        let pixels: [Float] = (0..<(9 * 5 * 2)).map { Float(($0 * 7919) % 65536) }
        let stack = ImageStack(width: 9, height: 5, pages: 2, pixels: pixels, format: .uint16)
        try stack.write(to: url, compression: .lzw)
        XCTAssertEqual(try ImageStack.read(from: url), stack)
    }

    func testReads16BitStripsWrittenThroughShim() throws {
        let url = makeTemporaryFolder(self).appendingPathComponent("shim16.tif")
        let (w, h) = (19, 13)
        let values: [[UInt16]] = (0..<2).map { p in (0..<(w * h)).map { UInt16(($0 * 331 + p * 17_000) % 65536) } }
        for compression in [COMPRESSION_NONE, COMPRESSION_LZW, COMPRESSION_ADOBE_DEFLATE] {
            var options = ShimTIFFWriter.Options()
            options.bitsPerSample = 16
            options.compression = UInt16(compression)
            options.predictor = compression == COMPRESSION_NONE ? nil : UInt16(PREDICTOR_HORIZONTAL)
            options.rowsPerStrip = 5
            ShimTIFFWriter.write(path: url.path, width: w, height: h, pages: values.map(rawBytes), options: options)
            let stack = try ImageStack.read(from: url)
            XCTAssertEqual(stack.format, .uint16)
            XCTAssertEqual(stack.width, w)
            XCTAssertEqual(stack.height, h)
            XCTAssertEqual(stack.pages, 2)
            XCTAssertEqual(stack.pixels, values.flatMap { $0.map(Float.init) }, "compression \(compression)")
            let normalized = stack.normalized()
            XCTAssertEqual(normalized.format, .float32)
            XCTAssertEqual(normalized.pixels[1], Float(values[0][1]) / 65535, accuracy: 1e-7)
        }
    }

    func testReadsTiledCompressedPagesWrittenThroughShim() throws {
        let dir = makeTemporaryFolder(self)
        let (w, h) = (40, 35)   // not multiples of the 16 x 16 tiles
        let pages8 = (0..<3).map { randomBytes(w * h, seed: 100 + UInt64($0)) }
        for compression in [COMPRESSION_NONE, COMPRESSION_LZW, COMPRESSION_ADOBE_DEFLATE] {
            let url = dir.appendingPathComponent("tiled8-\(compression).tif")
            var options = ShimTIFFWriter.Options()
            options.compression = UInt16(compression)
            options.tile = (16, 16)
            ShimTIFFWriter.write(path: url.path, width: w, height: h, pages: pages8, options: options)
            let stack = try ImageStack.read(from: url)
            XCTAssertEqual(stack.format, .uint8)
            XCTAssertEqual(stack.pixels, pages8.flatMap { $0.map(Float.init) }, "compression \(compression)")
        }
        // Tiled float, deflate with the floating-point predictor.
        let floats: [Float] = (0..<(w * h)).map { sin(Float($0) * 0.01) * 3 }
        let url = dir.appendingPathComponent("tiled-f32.tif")
        var options = ShimTIFFWriter.Options()
        options.bitsPerSample = 32
        options.sampleFormat = UInt16(SAMPLEFORMAT_IEEEFP)
        options.compression = UInt16(COMPRESSION_ADOBE_DEFLATE)
        options.predictor = UInt16(PREDICTOR_FLOATINGPOINT)
        options.tile = (32, 16)
        ShimTIFFWriter.write(path: url.path, width: w, height: h, pages: [rawBytes(floats)], options: options)
        let stack = try ImageStack.read(from: url)
        XCTAssertEqual(stack.format, .float32)
        XCTAssertEqual(stack.pixels, floats)
    }

    func testMinIsWhiteIsInverted() throws {
        let url = makeTemporaryFolder(self).appendingPathComponent("white.tif")
        write(HandTIFF.make([HandTIFF.page(width: 4, height: 1, photometric: 0, data: [0, 10, 200, 255])]), to: url)
        XCTAssertEqual(try ImageStack.read(from: url).pixels, [255, 245, 55, 0])
    }

    func testNormalization() {
        let bytes = ImageStack(width: 2, height: 1, pages: 1, pixels: [0, 255], format: .uint8)
        XCTAssertEqual(bytes.normalized().pixels, [0, 1])
        let inRange = ImageStack(width: 2, height: 1, pages: 1, pixels: [0.25, 0.5])
        XCTAssertEqual(inRange.normalized().pixels, [0.25, 0.5])
        let wide = ImageStack(width: 3, height: 1, pages: 1, pixels: [-2, 0, 6])
        XCTAssertEqual(wide.normalized().pixels, [0, 0.25, 1])
    }

    // MARK: bad input

    func testMissingFile() {
        let path = makeTemporaryFolder(self).appendingPathComponent("nope.tif").path
        assertTIFFError(.cannotOpen, page: .some(nil), ["nope.tif", "cannot open", "No such file"]) {
            try ImageStack.read(path: path)
        }
        XCTAssertThrowsError(try ImageStack.read(path: path)) { error in
            XCTAssertEqual((error as? TIFFErrorForTests)?.systemErrorCode, ENOENT, "\(error)")
        }
        let folder = makeTemporaryFolder(self)
        assertTIFFError(.cannotOpen, [folder.path, "is a directory, not a file"]) { try ImageStack.read(from: folder) }
    }

    func testRandomBytesAreNotATIFF() {
        let url = makeTemporaryFolder(self).appendingPathComponent("random.tif")
        var bytes = randomBytes(4096, seed: 3)
        bytes[0] = 0x12
        write(bytes, to: url)
        assertTIFFError(.notATIFF, ["random.tif", "not a TIFF file", "starts with 12"]) { try ImageStack.read(from: url) }
        // A byte-order mark with a wrong version number.
        write([0x49, 0x49, 0x2B, 0x01, 8, 0, 0, 0, 0, 0], to: url)
        assertTIFFError(.notATIFF, ["not a TIFF file", "version 299"]) { try ImageStack.read(from: url) }
    }

    func testEmptyFiles() {
        let url = makeTemporaryFolder(self).appendingPathComponent("empty.tif")
        write([], to: url)
        assertTIFFError(.empty, ["empty.tif", "file is empty (0 bytes)"]) { try ImageStack.read(from: url) }
        write([0x49, 0x49, 42, 0, 0, 0, 0, 0], to: url)
        assertTIFFError(.empty, ["contains no pages"]) { try ImageStack.read(from: url) }
    }

    func testTruncatedFiles() throws {
        let dir = makeTemporaryFolder(self)
        let good = dir.appendingPathComponent("good.tif")
        let (w, h) = (64, 48)
        try ImageStack(width: w, height: h, bytePages: (0..<3).map { randomBytes(w * h, seed: UInt64($0)) }).write(to: good)
        let full = [UInt8](try Data(contentsOf: good))
        let cut = dir.appendingPathComponent("cut.tif")

        // Header cut short.
        write(Array(full.prefix(5)), to: cut)
        assertTIFFError(.truncated, ["cut.tif", "header cut short (5 of 8 bytes)"]) { try ImageStack.read(from: cut) }

        // First directory beyond the end (libtiff writes pixel data first, the directory after it).
        write(Array(full.prefix(1000)), to: cut)
        assertTIFFError(.truncated, ["first directory is at offset", "only 1000 bytes"]) { try ImageStack.read(from: cut) }

        // Cut inside the third page: the second directory points past the end of the file.
        let firstIFD = Int(full[4]) | Int(full[5]) << 8 | Int(full[6]) << 16 | Int(full[7]) << 24
        let entryCount = Int(full[firstIFD]) | Int(full[firstIFD + 1]) << 8
        let nextPointer = firstIFD + 2 + 12 * entryCount
        let secondIFD = Int(full[nextPointer]) | Int(full[nextPointer + 1]) << 8 | Int(full[nextPointer + 2]) << 16
        XCTAssertGreaterThan(secondIFD, 0)
        write(Array(full.prefix(secondIFD + 4)), to: cut)
        assertTIFFError(.truncated, ["cut.tif", "chain of directories is broken after 1 page(s)",
                                     "directory 1 at offset \(secondIFD) announces", "run past the end of the file (\(secondIFD + 4) bytes)"]) {
            try ImageStack.read(from: cut)
        }

        // Pixel data cut: the strip extends past the end of the file.
        var page = HandTIFF.page(width: 64, height: 64)
        page.entries[273] = (4, [100_000])
        write(HandTIFF.make([page]), to: cut)
        assertTIFFError(.truncated, page: 0, ["cut.tif: page 0:", "strip 0 could not be read",
                                              "strip 0's 4096 bytes at offset 100000 run past the end of the file", "libtiff:"]) {
            try ImageStack.read(from: cut)
        }
    }

    func testPixelDataCutShortIsTruncated() throws {
        // One uncompressed 64 x 64 strip whose directory comes first and whose 4096 bytes the file stops
        // 1000 bytes into: the file was cut while being copied.
        let url = makeTemporaryFolder(self).appendingPathComponent("short.tif")
        var page = HandTIFF.page(width: 64, height: 64, data: [])
        let stripOffset = 8 + 2 + 12 * 9 + 4   // after the header and the directory of 9 entries
        page.entries[273] = (4, [UInt32(stripOffset)])
        page.entries[279] = (4, [4096])
        let bytes = HandTIFF.make([page]) + [UInt8](repeating: 77, count: 1000)
        XCTAssertEqual(bytes.count, stripOffset + 1000, "the directory has 9 entries and no out-of-line values")
        write(bytes, to: url)
        // The page's 4096 bytes cannot lie in a smaller file: rejected before its pixels are allocated.
        assertTIFFError(.truncated, page: 0, ["short.tif: page 0:",
                                              "the uncompressed pixel data, 64 x 64 uint8 samples (4096 bytes), cannot lie in the \(bytes.count)-byte file",
                                              "strip 0's 4096 bytes at offset \(stripOffset) run past the end of the file (\(bytes.count) bytes)"]) {
            try ImageStack.read(from: url)
        }
    }

    /// Fuzzing regression (docs/RELIABILITY.md): a 138-byte file announcing one 32768 x 32768 page made
    /// the reader allocate the 4 GiB of its floats (within the default limit) before reading a byte.
    /// Now an uncompressed page must fit in the file, and a compressed one in 65536 times the file.
    func testPageLargerThanTheFileCanHoldIsRejectedBeforeAllocation() throws {
        let url = makeTemporaryFolder(self).appendingPathComponent("hostile.tif")
        var page = HandTIFF.page(width: 32768, height: 32768, data: [UInt8](repeating: 0, count: 16))
        write(HandTIFF.make([page]), to: url)
        let size = HandTIFF.make([page]).count
        assertTIFFError(.truncated, page: 0, ["hostile.tif: page 0:",
                                              "32768 x 32768 uint8 samples (1073741824 bytes), cannot lie in the \(size)-byte file",
                                              "strip 0's", "run past the end of the file (\(size) bytes)"]) {
            try ImageStack.read(from: url)
        }
        assertTIFFError(.truncated, page: 0, ["cannot lie in the \(size)-byte file"]) { _ = try TIFFPageReader(path: url.path) }
        // A tile is decoded whole: 16 x 16 pixels in one 16384 x 16384 tile would need 256 MiB.
        var tiled = HandTIFF.page(width: 16, height: 16, data: [UInt8](repeating: 0, count: 64))
        tiled.entries[322] = (4, [16384])
        tiled.entries[323] = (4, [16384])
        tiled.entries[324] = (4, [8])
        tiled.entries[325] = (4, [64])
        tiled.entries[273] = nil
        tiled.entries[278] = nil
        write(HandTIFF.make([tiled]), to: url)
        assertTIFFError(.truncated, page: 0, ["16 x 16 uint8 samples (268435456 bytes with tiles), cannot lie in the"]) {
            try ImageStack.read(from: url)
        }
        write(HandTIFF.make([page]), to: url)
        page.entries[259] = (3, [8])   // deflate
        write(HandTIFF.make([page]), to: url)
        assertTIFFError(.corrupt, page: 0, ["hostile.tif: page 0:",
                                            "32768 x 32768 uint8 samples (1073741824 bytes) cannot be decoded from a \(size)-byte file (more than 65536 times its size)"]) {
            try ImageStack.read(from: url)
        }
    }

    func testTagValuesCutOffAreTruncated() throws {
        // Four strips: StripOffsets and StripByteCounts (16 bytes each) are stored after the directory;
        // the file stops right after the directory.
        let url = makeTemporaryFolder(self).appendingPathComponent("tags.tif")
        var page = HandTIFF.page(width: 64, height: 64)
        page.entries[278] = (4, [16])
        page.entries[273] = (4, (0..<4).map { UInt32(8 + 1024 * $0) })
        page.entries[279] = (4, [1024, 1024, 1024, 1024])
        let full = HandTIFF.make([page])
        let directoryEnd = 8 + 4096 + 2 + 12 * 9 + 4
        XCTAssertEqual(full.count, directoryEnd + 32, "two out-of-line arrays of 16 bytes after the directory")
        write(Array(full.prefix(directoryEnd)), to: url)
        assertTIFFError(.truncated, ["tags.tif", "directory 0: the 16 bytes of tag 273 at offset \(directoryEnd)",
                                     "run past the end of the file (\(directoryEnd) bytes)"]) {
            try ImageStack.read(from: url)
        }
        // The same file whole reads.
        write(full, to: url)
        XCTAssertEqual(try ImageStack.read(from: url).pixels, page.data.map(Float.init))
    }

    func testUndecodableStripWithinTheFileIsCorrupt() throws {
        // An LZW strip of bytes that are not LZW: all there, but not decodable.
        let url = makeTemporaryFolder(self).appendingPathComponent("lzw.tif")
        var page = HandTIFF.page(width: 64, height: 64, data: [UInt8](repeating: 0xFF, count: 512))
        page.entries[259] = (3, [5])
        write(HandTIFF.make([page]), to: url)
        assertTIFFError(.corrupt, page: 0, ["lzw.tif: page 0:"]) {
            try ImageStack.read(from: url)
        }
    }

    func testColorAndPaletteRejected() {
        let url = makeTemporaryFolder(self).appendingPathComponent("color.tif")
        let gray = HandTIFF.page(width: 8, height: 4)
        let rgb = HandTIFF.page(width: 8, height: 4, bitsPerSample: [8, 8, 8], samplesPerPixel: 3, photometric: 2)
        write(HandTIFF.make([gray, rgb]), to: url)
        assertTIFFError(.notGrayscale, page: 1, ["color.tif: page 1:", "RGB color image (3 samples per pixel) where grayscale is expected"]) {
            try ImageStack.read(from: url)
        }
        var palette = HandTIFF.page(width: 8, height: 4, photometric: 3)
        palette.entries[320] = (3, (0..<768).map { UInt32($0 % 256) * 257 })
        write(HandTIFF.make([palette]), to: url)
        assertTIFFError(.notGrayscale, page: 0, ["page 0:", "palette-color image where grayscale is expected"]) {
            try ImageStack.read(from: url)
        }
        let grayAlpha = HandTIFF.page(width: 8, height: 4, bitsPerSample: [8, 8], samplesPerPixel: 2, photometric: 1)
        write(HandTIFF.make([grayAlpha]), to: url)
        assertTIFFError(.notGrayscale, ["2 samples per pixel"]) { try ImageStack.read(from: url) }
    }

    func testUnsupportedBitDepthsAndSampleFormats() {
        let url = makeTemporaryFolder(self).appendingPathComponent("depth.tif")
        write(HandTIFF.make([HandTIFF.page(width: 16, height: 4, bitsPerSample: [1])]), to: url)
        assertTIFFError(.unsupportedFormat, page: 0, ["depth.tif: page 0:", "unsupported bit depth 1"]) {
            try ImageStack.read(from: url)
        }
        write(HandTIFF.make([HandTIFF.page(width: 16, height: 4), HandTIFF.page(width: 16, height: 4, bitsPerSample: [12])]), to: url)
        assertTIFFError(.unsupportedFormat, page: 1, ["page 1:", "unsupported bit depth 12"]) {
            try ImageStack.read(from: url)
        }
        write(HandTIFF.make([HandTIFF.page(width: 4, height: 4, bitsPerSample: [16], sampleFormat: 2)]), to: url)
        assertTIFFError(.unsupportedFormat, ["unsupported bit depth 16 (signed integer samples)"]) {
            try ImageStack.read(from: url)
        }
        write(HandTIFF.make([HandTIFF.page(width: 4, height: 4, bitsPerSample: [32], sampleFormat: 2)]), to: url)
        assertTIFFError(.unsupportedFormat, ["unsupported bit depth 32 (signed integer samples)"]) {
            try ImageStack.read(from: url)
        }
    }

    func testPagesOfDifferentSizesRejected() {
        let url = makeTemporaryFolder(self).appendingPathComponent("sizes.tif")
        write(HandTIFF.make([HandTIFF.page(width: 8, height: 8), HandTIFF.page(width: 8, height: 8),
                             HandTIFF.page(width: 8, height: 6)]), to: url)
        assertTIFFError(.inconsistentPages, page: 2, ["sizes.tif: page 2:", "page size 8 x 6 differs from page 0's 8 x 8"]) {
            try ImageStack.read(from: url)
        }
        write(HandTIFF.make([HandTIFF.page(width: 4, height: 4),
                             HandTIFF.page(width: 4, height: 4, bitsPerSample: [16])]), to: url)
        assertTIFFError(.inconsistentPages, page: 1, ["sample format uint16 differs from page 0's uint8"]) {
            try ImageStack.read(from: url)
        }
    }

    func testAbsurdDimensionsRejectedBeforeAllocation() {
        let url = makeTemporaryFolder(self).appendingPathComponent("huge.tif")
        write(HandTIFF.make([HandTIFF.page(width: 100_000, height: 100_000, data: [1, 2, 3, 4])]), to: url)
        assertTIFFError(.absurdDimensions, page: 0, ["huge.tif: page 0:", "dimensions 100000 x 100000 exceed the limit of 65536"]) {
            try ImageStack.read(from: url)
        }
        // Within the per-side limit, but the whole stack exceeds the total-bytes limit.
        write(HandTIFF.make([HandTIFF.page(width: 60_000, height: 60_000, data: [1, 2, 3, 4])]), to: url)
        assertTIFFError(.absurdDimensions, ["1 page(s) of 60000 x 60000", "limit of 4294967296 bytes"]) {
            try ImageStack.read(from: url)
        }
        write(HandTIFF.make([HandTIFF.page(width: 32, height: 32), HandTIFF.page(width: 32, height: 32)]), to: url)
        assertTIFFError(.absurdDimensions, ["2 page(s) of 32 x 32"]) {
            try ImageStack.read(from: url, limits: TIFFReadLimits(maxTotalBytes: 4096))
        }
        XCTAssertNoThrow(try ImageStack.read(from: url, limits: TIFFReadLimits(maxTotalBytes: 8192)))
        write(HandTIFF.make([HandTIFF.page(width: 0, height: 5, data: [])]), to: url)
        assertTIFFError(.corrupt, ["cannot read the first directory", "zero scanline size"]) { try ImageStack.read(from: url) }
    }

    func testNothingIsPrintedToStandardError() throws {
        let dir = makeTemporaryFolder(self)
        let url = dir.appendingPathComponent("noisy.tif")
        let output = try capturingStandardError {
            // Unknown private tag (a libtiff warning), then a truncated strip (a libtiff error).
            var page = HandTIFF.page(width: 64, height: 64)
            page.entries[65000] = (4, [1])
            write(HandTIFF.make([page]), to: url)
            XCTAssertNoThrow(try ImageStack.read(from: url))
            page.entries[273] = (4, [100_000])
            write(HandTIFF.make([page]), to: url)
            XCTAssertThrowsError(try ImageStack.read(from: url))
            write(randomBytes(100, seed: 1), to: url)
            XCTAssertThrowsError(try ImageStack.read(from: url))
            XCTAssertThrowsError(try ImageStack.read(path: dir.appendingPathComponent("missing.tif").path))
        }
        XCTAssertEqual(output, "")
    }

    func testWriteErrors() {
        let stack = ImageStack(width: 2, height: 2, pages: 1, pixels: [0, 1, 2, 3])
        assertTIFFError(.writeFailed, ["cannot create a temporary file"]) {
            try stack.write(path: "/nonexistent-folder-\(UUID().uuidString)/x.tif")
        }
        let empty = ImageStack(width: 0, height: 0, pages: 0, pixels: [])
        assertTIFFError(.writeFailed, ["empty stack"]) {
            try empty.write(to: makeTemporaryFolder(self).appendingPathComponent("e.tif"))
        }
    }
}
