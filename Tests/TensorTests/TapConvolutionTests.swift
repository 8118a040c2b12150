@testable import Tensor
import XCTest

/// The tap-GEMM path (`TapConvolution`) against direct loops: forward, backward-data (which runs as
/// the flipped forward) and backward-weight, on geometries that take it (wide rows, 8+ channels)
/// with dilation, asymmetric and valid padding, an even kernel, batch > 1, many bands, both thread
/// schedules, and a workspace too small for it (im2col then takes the call).
final class TapConvolutionTests: XCTestCase {
    static let geometries = [
        ConvGeometry(batch: 2, inChannels: 8, height: 12, width: 70, outChannels: 8, kernelHeight: 3, kernelWidth: 3,
                     padTop: 1, padBottom: 1, padLeft: 1, padRight: 1),
        ConvGeometry(batch: 1, inChannels: 9, height: 9, width: 66, outChannels: 12, kernelHeight: 3, kernelWidth: 3,
                     dilation: 2, padTop: 2, padBottom: 1, padLeft: 3, padRight: 1),
        ConvGeometry(batch: 3, inChannels: 8, height: 5, width: 64, outChannels: 10, kernelHeight: 2, kernelWidth: 4,
                     padTop: 1, padBottom: 0, padLeft: 0, padRight: 3),
        ConvGeometry(batch: 1, inChannels: 8, height: 7, width: 68, outChannels: 8, kernelHeight: 3, kernelWidth: 3),
    ]

    /// Output, input gradient and weight gradient by direct loops in Double.
    static func direct(_ g: ConvGeometry, x: [Float], w: [Float], bias: [Float], dy: [Float]) -> (y: [Double], dx: [Double], dw: [Double]) {
        var y = [Double](repeating: 0, count: g.batch * g.outChannels * g.outPixels)
        var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
        for n in 0..<g.batch { for co in 0..<g.outChannels { for oy in 0..<g.outHeight { for ox in 0..<g.outWidth {
            let o = ((n * g.outChannels + co) * g.outHeight + oy) * g.outWidth + ox
            var acc = Double(bias[co])
            for ci in 0..<g.inChannels { for ky in 0..<g.kernelHeight { for kx in 0..<g.kernelWidth {
                let iy = oy - g.padTop + ky * g.dilation, ix = ox - g.padLeft + kx * g.dilation
                if iy < 0 || iy >= g.height || ix < 0 || ix >= g.width { continue }
                let xi = ((n * g.inChannels + ci) * g.height + iy) * g.width + ix
                let wi = ((co * g.inChannels + ci) * g.kernelHeight + ky) * g.kernelWidth + kx
                acc += Double(x[xi]) * Double(w[wi])
                dx[xi] += Double(dy[o]) * Double(w[wi])
                dw[wi] += Double(dy[o]) * Double(x[xi])
            } } }
            y[o] = acc
        } } } }
        return (y, dx, dw)
    }

    func testTapPathMatchesDirectLoops() {
        for (i, g) in Self.geometries.enumerated() {
            XCTAssertTrue(TapConvolution.applies(to: g), "geometry \(i) should take the tap path")
            XCTAssertTrue(TapConvolution.applies(to: ConvolutionKernels.transposedGeometry(g)!), "geometry \(i) flipped")
            let x = randomTensor([g.batch, g.inChannels, g.height, g.width], seed: UInt64(500 + i))
            let w = randomTensor([g.outChannels, g.inChannels, g.kernelHeight, g.kernelWidth], seed: UInt64(510 + i))
            let bias = randomTensor([g.outChannels], seed: UInt64(520 + i))
            let dy = randomTensor([g.batch, g.outChannels, g.outHeight, g.outWidth], seed: UInt64(530 + i))
            let expected = Self.direct(g, x: x.scalars, w: w.scalars, bias: bias.scalars, dy: dy.scalars)
            func worst(_ t: Tensor, _ e: [Double]) -> Double { zip(t.scalars, e).map { abs(Double($0) - $1) }.max() ?? 0 }
            // Default limit; one-row bands (room for 2 rows of one lane's band and scratch); too
            // small for any band.
            let oneRow = 4 * 2 * (g.inChannels + g.outChannels) * (g.width + 8) * (g.kernelHeight * g.dilation + 1)
            for limit in [ConvolutionWorkspace.defaultLimitBytes, oneRow, 256] {
                for (threads, policy) in [(1, ConvolutionKernels.Parallelism.automatic), (2, .lanes), (2, .splitGemm)] {
                    ConvolutionKernels.parallelism = policy
                    defer { ConvolutionKernels.parallelism = .automatic }
                    let y = Tensor(repeating: .nan, shape: [g.batch, g.outChannels, g.outHeight, g.outWidth])
                    let dx = Tensor(repeating: .nan, shape: x.shape), dw = Tensor(repeating: .nan, shape: w.shape)
                    withThreads(threads) {
                        withWorkspaceLimit(limit) {
                            ConvolutionKernels.forward(g, input: x.storage.pointer, weight: w.storage.pointer,
                                                       bias: bias.storage.pointer, output: y.storage.pointer)
                            ConvolutionKernels.backwardData(g, outputGradient: dy.storage.pointer, weight: w.storage.pointer,
                                                            inputGradient: dx.storage.pointer)
                            ConvolutionKernels.backwardWeight(g, input: x.storage.pointer, outputGradient: dy.storage.pointer,
                                                              weightGradient: dw.storage.pointer, biasGradient: nil)
                        }
                    }
                    let label = "geometry \(i) limit \(limit) threads \(threads) \(policy)"
                    XCTAssertLessThan(worst(y, expected.y), 1e-4, "forward, \(label)")
                    XCTAssertLessThan(worst(dx, expected.dx), 1e-4, "backward-data, \(label)")
                    XCTAssertLessThan(worst(dw, expected.dw), 1e-3, "backward-weight, \(label)")
                }
            }
        }
    }

    /// The plan's bands cover every output row once, fit the workspace limit, and give every lane work.
    func testPlanCoversRowsWithinLimit() {
        let g = Self.geometries[0]
        for limit in [ConvolutionWorkspace.defaultLimitBytes, 60_000, 30_000] {
            withWorkspaceLimit(limit) {
                withThreads(2) {
                    guard let p = TapConvolution.plan(g, scratchPerPixel: g.outChannels) else {
                        return XCTFail("limit \(limit) should allow bands")
                    }
                    let laneFloats = p.bandFloats + p.rows * p.wp * g.outChannels
                    XCTAssertLessThanOrEqual(p.lanes * laneFloats, ConvolutionWorkspace.limitFloats, "limit \(limit)")
                    var covered = [Int](repeating: 0, count: g.outHeight)
                    for item in 0..<p.bandsPerImage { for r in p.band(item).rows { covered[r] += 1 } }
                    XCTAssertEqual(covered, [Int](repeating: 1, count: g.outHeight), "limit \(limit)")
                    XCTAssertEqual(p.lanes, 2, "limit \(limit)")
                }
            }
        }
        XCTAssertNil(withWorkspaceLimit(256) { TapConvolution.plan(g, scratchPerPixel: g.outChannels) })
    }
}
