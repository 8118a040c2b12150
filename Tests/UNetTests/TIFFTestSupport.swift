import CTIFF
@testable import UNet
import CTIFFShim
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A fresh temporary folder, removed when the test case ends.
func makeTemporaryFolder(_ testCase: XCTestCase, file: StaticString = #filePath, line: UInt = #line) -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("unet-tests-\(getpid())-\(UUID().uuidString)", isDirectory: true)
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    testCase.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// Runs `body` with file descriptor 2 redirected to a temporary file and returns what was written there.
func capturingStandardError(_ body: () throws -> Void) rethrows -> String {
    fflush(stderr)
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("stderr-\(UUID().uuidString)").path
    let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
    precondition(fd >= 0)
    let saved = dup(2)
    dup2(fd, 2)
    defer {
        fflush(stderr)
        dup2(saved, 2)
        close(saved)
        close(fd)
        unlink(path)
    }
    try body()
    fflush(stderr)
    return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

/// Builds little-endian classic TIFF files byte by byte, for hostile and unusual inputs that libtiff
/// itself would not write.
struct HandTIFF {
    /// One directory: tag -> (type, values). Types: 3 = SHORT, 4 = LONG. The pixel bytes are stored before
    /// the directory; StripOffsets (273) and StripByteCounts (279) are filled in unless given.
    struct Page {
        var entries: [UInt16: (type: UInt16, values: [UInt32])]
        var data: [UInt8]
    }

    /// A one-strip page with the usual tags.
    static func page(width: UInt32, height: UInt32, bitsPerSample: [UInt32] = [8], samplesPerPixel: UInt32 = 1,
                     photometric: UInt32 = 1, sampleFormat: UInt32? = nil, data: [UInt8]? = nil) -> Page {
        let bytesPerRow = (Int(width) * Int(bitsPerSample[0]) * Int(samplesPerPixel) + 7) / 8
        var e: [UInt16: (type: UInt16, values: [UInt32])] = [
            256: (4, [width]), 257: (4, [height]), 258: (3, bitsPerSample), 259: (3, [1]),
            262: (3, [photometric]), 277: (3, [samplesPerPixel]), 278: (4, [height]),
        ]
        if let sampleFormat { e[339] = (3, Array(repeating: sampleFormat, count: Int(samplesPerPixel))) }
        let bytes = data ?? [UInt8]((0..<(bytesPerRow * Int(height))).map { UInt8(truncatingIfNeeded: $0 * 7) })
        return Page(entries: e, data: bytes)
    }

    static func make(_ pages: [Page]) -> [UInt8] {
        var out: [UInt8] = [0x49, 0x49, 42, 0, 0, 0, 0, 0]
        var nextPointerAt = 4
        func put32(_ v: UInt32, at i: Int) {
            out[i] = UInt8(v & 0xFF); out[i + 1] = UInt8((v >> 8) & 0xFF)
            out[i + 2] = UInt8((v >> 16) & 0xFF); out[i + 3] = UInt8(v >> 24)
        }
        for page in pages {
            let dataOffset = out.count
            out += page.data
            if out.count % 2 == 1 { out.append(0) }
            var entries = page.entries
            if entries[273] == nil { entries[273] = (4, [UInt32(dataOffset)]) }
            if entries[279] == nil { entries[279] = (4, [UInt32(page.data.count)]) }
            let ifdOffset = out.count
            put32(UInt32(ifdOffset), at: nextPointerAt)
            let tags = entries.keys.sorted()
            var overflowOffset = ifdOffset + 2 + 12 * tags.count + 4
            var overflow: [UInt8] = []
            out += [UInt8(tags.count & 0xFF), UInt8(tags.count >> 8)]
            for tag in tags {
                let (type, values) = entries[tag]!
                let size = type == 3 ? 2 : 4
                var payload: [UInt8] = []
                for v in values {
                    if size == 2 { payload += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
                    else { payload += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)] }
                }
                out += [UInt8(tag & 0xFF), UInt8(tag >> 8), UInt8(type), 0]
                let count = UInt32(values.count)
                out += [UInt8(count & 0xFF), UInt8((count >> 8) & 0xFF), UInt8((count >> 16) & 0xFF), UInt8(count >> 24)]
                if payload.count <= 4 {
                    out += payload + [UInt8](repeating: 0, count: 4 - payload.count)
                } else {
                    let o = UInt32(overflowOffset)
                    out += [UInt8(o & 0xFF), UInt8((o >> 8) & 0xFF), UInt8((o >> 16) & 0xFF), UInt8(o >> 24)]
                    overflow += payload
                    if overflow.count % 2 == 1 { overflow.append(0) }
                    overflowOffset = ifdOffset + 2 + 12 * tags.count + 4 + overflow.count
                }
            }
            nextPointerAt = out.count
            out += [0, 0, 0, 0]
            out += overflow
        }
        return out
    }
}

/// Writes TIFF files directly through libtiff and the C shim (for layouts ImageStack.write does not
/// produce: tiles, 16-bit with a given compression, several rows per strip).
enum ShimTIFFWriter {
    struct Options {
        var bitsPerSample: UInt16 = 8
        var sampleFormat: UInt16 = UInt16(SAMPLEFORMAT_UINT)
        var compression: UInt16 = UInt16(COMPRESSION_NONE)
        var predictor: UInt16? = nil
        var tile: (UInt32, UInt32)? = nil
        var rowsPerStrip: UInt32 = 4
    }

    /// `pages` are raw native-endian sample bytes of width*height samples each.
    static func write(path: String, width: Int, height: Int, pages: [[UInt8]], options: Options) {
        guard let tif = TIFFOpen(path, "w") else { fatalError("TIFFOpen failed for \(path)") }
        defer { TIFFClose(tif) }
        let bytesPerSample = Int(options.bitsPerSample) / 8
        for (p, data) in pages.enumerated() {
            precondition(data.count == width * height * bytesPerSample)
            _ = ctiff_set_u32(tif, UInt32(TIFFTAG_IMAGEWIDTH), UInt32(width))
            _ = ctiff_set_u32(tif, UInt32(TIFFTAG_IMAGELENGTH), UInt32(height))
            _ = ctiff_set_u16(tif, UInt32(TIFFTAG_BITSPERSAMPLE), options.bitsPerSample)
            _ = ctiff_set_u16(tif, UInt32(TIFFTAG_SAMPLESPERPIXEL), 1)
            _ = ctiff_set_u16(tif, UInt32(TIFFTAG_SAMPLEFORMAT), options.sampleFormat)
            _ = ctiff_set_u16(tif, UInt32(TIFFTAG_PHOTOMETRIC), UInt16(PHOTOMETRIC_MINISBLACK))
            _ = ctiff_set_u16(tif, UInt32(TIFFTAG_PLANARCONFIG), UInt16(PLANARCONFIG_CONTIG))
            _ = ctiff_set_u16(tif, UInt32(TIFFTAG_COMPRESSION), options.compression)
            if let predictor = options.predictor { _ = ctiff_set_u16(tif, UInt32(TIFFTAG_PREDICTOR), predictor) }
            _ = ctiff_set_u16_pair(tif, UInt32(TIFFTAG_PAGENUMBER), UInt16(p), UInt16(pages.count))
            var copy = data
            if let (tw, th) = options.tile {
                _ = ctiff_set_u32(tif, UInt32(TIFFTAG_TILEWIDTH), tw)
                _ = ctiff_set_u32(tif, UInt32(TIFFTAG_TILELENGTH), th)
                let tileBytes = Int(tw) * Int(th) * bytesPerSample
                var tile = [UInt8](repeating: 0, count: tileBytes)
                for y0 in stride(from: 0, to: height, by: Int(th)) {
                    for x0 in stride(from: 0, to: width, by: Int(tw)) {
                        for i in tile.indices { tile[i] = 0 }
                        for r in 0..<min(Int(th), height - y0) {
                            let cols = min(Int(tw), width - x0) * bytesPerSample
                            let src = ((y0 + r) * width + x0) * bytesPerSample
                            tile.replaceSubrange(r * Int(tw) * bytesPerSample ..< r * Int(tw) * bytesPerSample + cols,
                                                 with: copy[src ..< src + cols])
                        }
                        let t = TIFFComputeTile(tif, UInt32(x0), UInt32(y0), 0, 0)
                        let n = tile.withUnsafeMutableBytes { TIFFWriteEncodedTile(tif, t, $0.baseAddress, tmsize_t(tileBytes)) }
                        precondition(n == tileBytes, "TIFFWriteEncodedTile failed")
                    }
                }
            } else {
                _ = ctiff_set_u32(tif, UInt32(TIFFTAG_ROWSPERSTRIP), options.rowsPerStrip)
                let rowBytes = width * bytesPerSample
                var strip: UInt32 = 0
                for row0 in stride(from: 0, to: height, by: Int(options.rowsPerStrip)) {
                    let rows = min(Int(options.rowsPerStrip), height - row0)
                    let n = copy.withUnsafeMutableBytes {
                        TIFFWriteEncodedStrip(tif, strip, $0.baseAddress! + row0 * rowBytes, tmsize_t(rows * rowBytes))
                    }
                    precondition(n == rows * rowBytes, "TIFFWriteEncodedStrip failed")
                    strip += 1
                }
            }
            precondition(TIFFWriteDirectory(tif) == 1)
        }
    }
}

/// Native-endian bytes of an array of trivial values.
func rawBytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

/// Asserts that `body` throws a `TIFFError` of `kind` whose description contains every one of `fragments`.
@discardableResult
func assertTIFFError<T>(_ kind: TIFFErrorKindForTests, page: Int?? = nil, _ fragments: [String],
                        file: StaticString = #filePath, line: UInt = #line,
                        _ body: () throws -> T) -> String? {
    do {
        _ = try body()
        XCTFail("expected a TIFFError of kind \(kind)", file: file, line: line)
        return nil
    } catch let error as TIFFErrorForTests {
        XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line)
        if let page { XCTAssertEqual(error.page, page, "\(error)", file: file, line: line) }
        for fragment in fragments {
            XCTAssertTrue(error.description.contains(fragment), "'\(error)' lacks '\(fragment)'", file: file, line: line)
        }
        return error.description
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
        return nil
    }
}

// libtiff's C module also declares a (variadic, unavailable) `TIFFError` function; spell ours out.
typealias TIFFErrorForTests = UNet.TIFFError
typealias TIFFErrorKindForTests = UNet.TIFFError.Kind
