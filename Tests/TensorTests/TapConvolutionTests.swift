@testable import Tensor
import XCTest

/// The tap-GEMM path (`TapConvolution`) against direct loops: forward, backward-data (which runs as
/// the flipped forward) and backward-weight, on geometries that take it (wide rows, 8+ channels)
/// with dilation, asymmetric and valid padding, an even kernel, batch > 1, many bands, every
/// parallelism policy, and a workspace too small for it (im2col then takes the call).
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

    func testTapPathMatchesDirectLoops() {
        for (i, g) in Self.geometries.enumerated() {
            XCTAssertTrue(TapConvolution.applies(to: g), "geometry \(i) should take the tap path")
            XCTAssertTrue(TapConvolution.applies(to: ConvolutionKernels.transposedGeometry(g)!), "geometry \(i) flipped")
            let x = randomTensor([g.batch, g.inChannels, g.height, g.width], seed: UInt64(500 + i))
            let w = randomTensor([g.outChannels, g.inChannels, g.kernelHeight, g.kernelWidth], seed: UInt64(510 + i))
            let bias = randomTensor([g.outChannels], seed: UInt64(520 + i))
            let dy = randomTensor([g.batch, g.outChannels, g.outHeight, g.outWidth], seed: UInt64(530 + i))
            let expected = directConvolution(g, x: x.scalars, w: w.scalars, bias: bias.scalars, dy: dy.scalars)
            // Default limit; one-row bands (room for 2 rows of one lane's band and scratch); too
            // small for any band.
            let oneRow = 4 * 2 * (g.inChannels + g.outChannels) * (g.width + 8) * (g.kernelHeight * g.dilation + 1)
            for limit in [ConvolutionWorkspace.defaultLimitBytes, oneRow, 256] {
                for (threads, parallelism) in [(1, ConvolutionPolicy.Parallelism.automatic), (2, .automatic), (2, .lanes), (2, .splitGemm)] {
                    let policy = ConvolutionPolicy(parallelism: parallelism)
                    let y = Tensor(repeating: .nan, shape: [g.batch, g.outChannels, g.outHeight, g.outWidth])
                    let dx = Tensor(repeating: .nan, shape: x.shape), dw = Tensor(repeating: .nan, shape: w.shape)
                    withThreads(threads) {
                        withWorkspaceLimit(limit) {
                            ConvolutionKernels.forward(g, input: x.storage.pointer, weight: w.storage.pointer,
                                                       bias: bias.storage.pointer, output: y.storage.pointer, policy: policy)
                            ConvolutionKernels.backwardData(g, outputGradient: dy.storage.pointer, weight: w.storage.pointer,
                                                            inputGradient: dx.storage.pointer, policy: policy)
                            ConvolutionKernels.backwardWeight(g, input: x.storage.pointer, outputGradient: dy.storage.pointer,
                                                              weightGradient: dw.storage.pointer, biasGradient: nil, policy: policy)
                        }
                    }
                    let label = "geometry \(i) limit \(limit) threads \(threads) \(parallelism)"
                    XCTAssertLessThan(worstDifference(y, expected.y), 1e-4, "forward, \(label)")
                    XCTAssertLessThan(worstDifference(dx, expected.dx), 1e-4, "backward-data, \(label)")
                    XCTAssertLessThan(worstDifference(dw, expected.dw), 1e-3, "backward-weight, \(label)")
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
                    guard let p = TapConvolution.plan(g, scratchPerPixel: g.outChannels, parallelism: .automatic) else {
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
        XCTAssertNil(withWorkspaceLimit(256) { TapConvolution.plan(g, scratchPerPixel: g.outChannels, parallelism: .automatic) })
    }
}
