@testable import Tensor
import XCTest

/// im2col against its definition, element by element, for pixel ranges that start and end inside
/// output rows: both the general traversal and the one-copy-per-tap path of "same" stride-1
/// convolutions (`im2colRowPreserving`), whose row-edge zeroing is easy to get wrong, and the
/// 8-lane stride-2 gather.
final class Im2ColTests: XCTestCase {
    /// The column entry of tap (c, ky, kx) for output pixel p: the input value, or 0 in the padding.
    static func reference(_ x: Tensor, _ g: ConvGeometry, row: Int, pixel p: Int) -> Float {
        let taps = g.kernelHeight * g.kernelWidth
        let c = row / taps, ky = (row % taps) / g.kernelWidth, kx = row % g.kernelWidth
        let oy = p / g.outWidth, ox = p % g.outWidth
        let iy = oy * g.stride + ky * g.dilation - g.padTop, ix = ox * g.stride + kx * g.dilation - g.padLeft
        guard iy >= 0, iy < g.height, ix >= 0, ix < g.width else { return 0 }
        return x.storage.pointer[(c * g.height + iy) * g.width + ix]
    }

    func testIm2ColMatchesDefinition() {
        let geometries: [(ConvGeometry, rowPreserving: Bool)] = [
            // 3x3 "same", the U-Net's convolution.
            (ConvGeometry(batch: 1, inChannels: 3, height: 7, width: 9, outChannels: 1, kernelHeight: 3, kernelWidth: 3,
                          padTop: 1, padBottom: 1, padLeft: 1, padRight: 1), true),
            // Dilated, asymmetric padding, output rows as wide as input rows but fewer of them.
            (ConvGeometry(batch: 1, inChannels: 2, height: 8, width: 6, outChannels: 1, kernelHeight: 3, kernelWidth: 3,
                          dilation: 2, padTop: 0, padBottom: 1, padLeft: 3, padRight: 1), true),
            // Even kernel, padding all on one side; a kernel as wide as the padded row.
            (ConvGeometry(batch: 1, inChannels: 2, height: 5, width: 4, outChannels: 1, kernelHeight: 2, kernelWidth: 4,
                          padTop: 1, padBottom: 0, padLeft: 0, padRight: 3), true),
            (ConvGeometry(batch: 1, inChannels: 1, height: 3, width: 2, outChannels: 1, kernelHeight: 5, kernelWidth: 5,
                          padTop: 2, padBottom: 2, padLeft: 2, padRight: 2), true),
            // General traversal: valid, strided.
            (ConvGeometry(batch: 1, inChannels: 2, height: 9, width: 8, outChannels: 1, kernelHeight: 3, kernelWidth: 3), false),
            (ConvGeometry(batch: 1, inChannels: 2, height: 9, width: 8, outChannels: 1, kernelHeight: 3, kernelWidth: 3,
                          stride: 2, padTop: 1, padBottom: 1, padLeft: 1, padRight: 0), false),
            // Stride 2 on rows long enough for the 8-lane gather (and its scalar tail).
            (ConvGeometry(batch: 1, inChannels: 2, height: 6, width: 42, outChannels: 1, kernelHeight: 2, kernelWidth: 2,
                          stride: 2), false),
            (ConvGeometry(batch: 1, inChannels: 2, height: 7, width: 37, outChannels: 1, kernelHeight: 3, kernelWidth: 3,
                          stride: 2, padTop: 1, padBottom: 1, padLeft: 1, padRight: 1), false),
        ]
        for (g, rowPreserving) in geometries {
            XCTAssertTrue(g.isValid, "\(g)")
            XCTAssertEqual(g.stride == 1 && g.outWidth == g.width, rowPreserving, "\(g) takes the intended path")
            let x = randomTensor([1, g.inChannels, g.height, g.width], seed: 7)
            let total = g.outPixels
            let ranges = [0..<total, 1..<(total - 1), (g.outWidth - 1)..<(g.outWidth + 2), (total / 2)..<(total / 2 + 1),
                          (total - g.outWidth - 1)..<total]
            for range in ranges {
                let ld = range.count + 3
                let col = UnsafeMutablePointer<Float>.allocate(capacity: g.columnRows * ld)
                defer { col.deallocate() }
                col.update(repeating: .nan, count: g.columnRows * ld)
                Im2Col.im2col(x.storage.pointer, g, pixels: range, channels: 0..<g.inChannels, into: col, stride: ld)
                var mismatches = 0
                for row in 0..<g.columnRows {
                    for (j, p) in range.enumerated() where col[row * ld + j] != Self.reference(x, g, row: row, pixel: p) {
                        mismatches += 1
                    }
                }
                XCTAssertEqual(mismatches, 0, "\(g) pixels \(range)")
            }
        }
    }
}
