import Foundation
@testable import UNet
import XCTest

final class PNGTests: XCTestCase {
    private let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Decodes a PNG with python3's zlib (independent of libpng); nil when python3 is unavailable.
    private func decodeWithPython(_ url: URL) -> (width: Int, height: Int, channels: Int, pixels: [UInt8])? {
        let script = """
        import sys, zlib, struct
        d = open(sys.argv[1], 'rb').read()
        assert d[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
        pos, idat, hdr = 8, b'', None
        while pos < len(d):
            n, = struct.unpack('>I', d[pos:pos+4]); t = d[pos+4:pos+8]; body = d[pos+8:pos+8+n]
            crc, = struct.unpack('>I', d[pos+8+n:pos+12+n])
            assert zlib.crc32(t + body) & 0xffffffff == crc, 'bad CRC'
            if t == b'IHDR': hdr = struct.unpack('>IIBBBBB', body)
            if t == b'IDAT': idat += body
            pos += 12 + n
        w, h, depth, ctype, _, _, interlace = hdr
        assert depth == 8 and interlace == 0 and ctype in (0, 2)
        ch = 1 if ctype == 0 else 3
        raw = zlib.decompress(idat); stride = w * ch; out = bytearray(); prev = bytearray(stride); i = 0
        for y in range(h):
            f = raw[i]; line = bytearray(raw[i+1:i+1+stride]); i += 1 + stride
            for x in range(stride):
                a = line[x-ch] if x >= ch else 0; b = prev[x]; c = prev[x-ch] if x >= ch else 0
                if f == 1: line[x] = (line[x] + a) & 255
                elif f == 2: line[x] = (line[x] + b) & 255
                elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
                elif f == 4:
                    p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            out += line; prev = line
        sys.stdout.write('%d %d %d\\n' % (w, h, ch) + out.hex())
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, url.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let text = String(data: output, encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let header = lines[0].split(separator: " ").compactMap { Int($0) }
        let hex: [UInt8] = lines.count > 1 ? Array(lines[1].utf8) : []
        var pixels = [UInt8]()
        var i = 0
        while i + 1 < hex.count {
            pixels.append(UInt8(String(decoding: hex[i...i + 1], as: UTF8.self), radix: 16)!)
            i += 2
        }
        return (header[0], header[1], header[2], pixels)
    }

    func testGrayRoundTrip() throws {
        let dir = makeTemporaryFolder(self)
        let (w, h) = (37, 21)
        let pixels = (0..<(w * h)).map { UInt8(($0 * 13 + $0 / w * 7) % 256) }
        let url = dir.appendingPathComponent("gray.png")
        try PNG.write(gray: pixels, width: w, height: h, to: url)
        let bytes = [UInt8](try Data(contentsOf: url))
        XCTAssertEqual(Array(bytes.prefix(8)), signature)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["gray.png"])
        XCTAssertEqual(try PNG.read(from: url), PNGImage(width: w, height: h, channels: 1, pixels: pixels))
        if let decoded = decodeWithPython(url) {
            XCTAssertEqual(decoded.width, w)
            XCTAssertEqual(decoded.height, h)
            XCTAssertEqual(decoded.channels, 1)
            XCTAssertEqual(decoded.pixels, pixels)
        } else {
            print("PNGTests: python3 not available, skipping the independent decode")
        }
    }

    func testRGBRoundTripAndOverlay() throws {
        let dir = makeTemporaryFolder(self)
        let (w, h) = (16, 9)
        let image: [Float] = (0..<(w * h)).map { Float($0 % w) / Float(w - 1) }
        let mask: [Float] = (0..<(w * h)).map { $0 / w < 3 ? 1 : 0 }
        let rgb = PNG.overlay(image: image, highlight: mask, width: w, height: h, color: (255, 0, 0), opacity: 0.5)
        XCTAssertEqual(rgb.count, w * h * 3)
        // Highlighted pixel 0 (gray 0): half red. Unhighlighted pixel in row 5, column 15 (gray 255): white.
        XCTAssertEqual(Array(rgb[0..<3]), [128, 0, 0])
        XCTAssertEqual(Array(rgb[(5 * w + 15) * 3 ..< (5 * w + 15) * 3 + 3]), [255, 255, 255])
        let url = dir.appendingPathComponent("overlay.png")
        try PNG.write(rgb: rgb, width: w, height: h, to: url)
        XCTAssertEqual(Array([UInt8](try Data(contentsOf: url)).prefix(8)), signature)
        XCTAssertEqual(try PNG.read(from: url), PNGImage(width: w, height: h, channels: 3, pixels: rgb))
        if let decoded = decodeWithPython(url) {
            XCTAssertEqual(decoded.channels, 3)
            XCTAssertEqual(decoded.pixels, rgb)
        }
    }

    func testFloatToBytes() {
        XCTAssertEqual(PNG.bytes(from: [-1, 0, 0.5, 1, 2, .nan]), [0, 0, 128, 255, 255, 0])
        XCTAssertEqual(PNG.bytes(from: [0, 5, 10], range: 0...10), [0, 128, 255])
    }

    func testErrors() {
        XCTAssertThrowsError(try PNG.encode(pixels: [1, 2, 3], width: 2, height: 2, channels: 1)) { error in
            XCTAssertEqual("\(error)", "3 bytes for 2 x 2 x 1")
        }
        XCTAssertThrowsError(try PNG.encode(pixels: [], width: 0, height: 0, channels: 1)) { error in
            XCTAssertTrue("\(error)".contains("invalid size 0 x 0"))
        }
        XCTAssertThrowsError(try PNG.decode([1, 2, 3, 4, 5, 6, 7, 8, 9])) { error in
            XCTAssertTrue("\(error)".hasPrefix("not a readable PNG: "), "\(error)")
            XCTAssertFalse("\(error)".hasSuffix("unknown libpng error"), "libpng's message should be captured: \(error)")
        }
        XCTAssertThrowsError(try PNG.write(gray: [0], width: 1, height: 1,
                                           to: URL(fileURLWithPath: "/nonexistent-\(UUID().uuidString)/a.png"))) { error in
            XCTAssertTrue("\(error)".contains("cannot create a temporary file"), "\(error)")
        }
    }
}
