@testable import UNet
import XCTest

final class SubpixelAlignmentTests: XCTestCase {
    /// A smooth map with structure in every direction (so every shift is identifiable).
    static func smoothMap(height: Int, width: Int) -> [Float] {
        (0..<(height * width)).map { i in
            let y = Double(i / width), x = Double(i % width)
            return Float(0.5 + 0.2 * sin(x * 0.31 + y * 0.07) + 0.2 * cos(y * 0.27 - x * 0.11) + 0.1 * sin((x + y) * 0.19))
        }
    }

    func testWholePixelShiftsMoveTheContentAndZeroIsTheIdentity() {
        let h = 9, w = 11
        let map = (0..<(h * w)).map { Float($0) }
        XCTAssertEqual(SubpixelAlignment.shifted(map, height: h, width: w, dy: 0, dx: 0), map)
        let moved = SubpixelAlignment.shifted(map, height: h, width: w, dy: 2, dx: -1)
        for y in 0..<h { for x in 0..<w {
            // Content moves by (+2, -1): out[y, x] = in[y - 2, x + 1], edges repeated.
            let sy = min(max(y - 2, 0), h - 1), sx = min(max(x + 1, 0), w - 1)
            XCTAssertEqual(moved[y * w + x], map[sy * w + sx], "(\(y), \(x))")
        } }
        // Half a pixel: the mean of the two neighbours.
        let half = SubpixelAlignment.shifted(map, height: h, width: w, dy: 0, dx: 0.5)
        XCTAssertEqual(half[4 * w + 5], (map[4 * w + 5] + map[4 * w + 4]) / 2, accuracy: 1e-5)
    }

    func testEstimateRecoversKnownShifts() {
        let h = 48, w = 56
        let reference = Self.smoothMap(height: h, width: w)
        for (dy, dx) in [(0.0, 0.0), (0.5, -0.75), (-1.25, 0.25), (2.0, -2.0), (1.0, 1.5)] {
            let moving = SubpixelAlignment.shifted(reference, height: h, width: w, dy: dy, dx: dx)
            let found = SubpixelAlignment.estimateShift(of: moving, onto: reference, height: h, width: w)
            XCTAssertEqual(found.dy, -dy, accuracy: 0.13, "content moved by (\(dy), \(dx))")
            XCTAssertEqual(found.dx, -dx, accuracy: 0.13, "content moved by (\(dy), \(dx))")
        }
        // Maps too small to compare are left alone.
        let tiny = [Float](repeating: 1, count: 16)
        XCTAssertTrue(SubpixelAlignment.estimateShift(of: tiny, onto: tiny, height: 4, width: 4) == (0, 0))
    }

    /// A fake network that predicts each pixel from the one above it, as a model that learned a
    /// labels-one-row-down offset would: flips and rotations turn that offset around.
    static func offsetForward(_ x: Tensor) -> Tensor {
        let (n, _, h, w) = x.shape4("offset")
        let src = x.scalars
        var out = [Float](repeating: 0, count: n * 2 * h * w)
        for b in 0..<n { for y in 0..<h { for xx in 0..<w {
            let v = 8 * (src[b * h * w + max(y - 1, 0) * w + xx] - 0.5)
            out[b * 2 * h * w + h * w + y * w + xx] = v
        } } }
        return Tensor(shape: [n, 2, h, w], scalars: out)
    }

    func testAlignedTestTimeAugmentationKeepsALearnedOffset() {
        let h = 40, w = 40
        let pixels = Self.smoothMap(height: h, width: w)
        let predictor = TiledPredictor(geometry: TileGeometry(alignment: 1, contextMargin: 1, outputSize: { $0 }),
                                       tileSize: 64, forward: Self.offsetForward)
        let plain = predictor.probabilities(pixels: pixels, height: h, width: w)
        let averaged = predictor.probabilities(pixels: pixels, height: h, width: w, testTimeAugmentation: true)
        let aligned = predictor.probabilities(pixels: pixels, height: h, width: w, testTimeAugmentation: true, aligned: true)
        func interiorDifference(_ a: Tensor, _ b: Tensor) -> Float {
            var worst: Float = 0
            for c in 0..<2 { for y in 4..<(h - 4) { for x in 4..<(w - 4) {
                worst = max(worst, abs(a[c, y, x] - b[c, y, x]))
            } } }
            return worst
        }
        XCTAssertGreaterThan(interiorDifference(averaged, plain), 0.05, "unaligned averaging blurs the offset")
        XCTAssertLessThan(interiorDifference(aligned, plain), 1e-4, "aligned averaging keeps it")
        XCTAssertTrue(aligned.sum(alongAxis: 0).isApproximatelyEqual(to: Tensor.ones([h, w]), tolerance: 1e-5))
    }
}
