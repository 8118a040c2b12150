@testable import Tensor
import XCTest

/// Winograd convolution (`WinogradConvolution`, F(2x2,3x3) and F(4x4,3x3)) against direct loops in
/// Double: odd sizes that are not multiples of the tile, same and valid padding, batch > 1, every
/// parallelism, workspace limits that force several blocks or leave no room (the exact paths then
/// take the call); every 3x3 layer shape of the base-16 and base-64 U-Nets at small sizes with a
/// stated error bound; backward-data (the flipped forward) against the exact path; and
/// finite-difference gradients through `conv2d` with Winograd forced.
final class WinogradTests: XCTestCase {
    /// Accuracy bounds asserted, as max |winograd - direct| / max |direct| on uniform [-1, 1) data
    /// (measured worst over the U-Net shapes below, Cin up to 1536, 2026-11-30: F2 8.9e-7,
    /// F4 1.3e-5; the bounds leave about 10x margin). The exact paths stay near 1e-7.
    static let relativeBound: [WinogradTile: Double] = [.f2: 1e-5, .f4: 1e-4]

    /// Bounds of the weight gradient, as max |winograd - direct| / max |direct| (measured worst over
    /// the U-Net shapes below, 2026-11-30: F2 2.7e-7, F4 4.5e-6; 20-40x margin). The gradient
    /// transform scales by up to 8 per axis before the sum over tiles, the filter transform back by
    /// 1/24, as in the forward.
    static let weightGradientBound: [WinogradTile: Double] = [.f2: 1e-5, .f4: 1e-4]

    static func same(_ n: Int, _ cin: Int, _ cout: Int, _ h: Int, _ w: Int) -> ConvGeometry {
        ConvGeometry(batch: n, inChannels: cin, height: h, width: w, outChannels: cout, kernelHeight: 3, kernelWidth: 3,
                     padTop: 1, padBottom: 1, padLeft: 1, padRight: 1)
    }

    static func valid(_ n: Int, _ cin: Int, _ cout: Int, _ h: Int, _ w: Int) -> ConvGeometry {
        ConvGeometry(batch: n, inChannels: cin, height: h, width: w, outChannels: cout, kernelHeight: 3, kernelWidth: 3)
    }

    /// max |t - expected| / max |expected|.
    func relativeError(_ t: Tensor, _ expected: [Double]) -> Double {
        worstDifference(t, expected) / Swift.max(1e-30, expected.map(abs).max() ?? 0)
    }

    /// Forward by Winograd under `policy`, on NaN-filled output (so a pixel it misses fails).
    func winogradForward(_ g: ConvGeometry, _ x: Tensor, _ w: Tensor, _ b: Tensor?, policy: ConvolutionPolicy) -> Tensor {
        let y = Tensor(repeating: .nan, shape: [g.batch, g.outChannels, g.outHeight, g.outWidth])
        ConvolutionKernels.forward(g, input: x.storage.pointer, weight: w.storage.pointer,
                                   bias: b.map { UnsafePointer($0.storage.pointer) }, output: y.storage.pointer, policy: policy)
        return y
    }

    /// Odd sizes that are not multiples of the tile, batches of 1-3, same and valid padding,
    /// asymmetric padding and the "full" padding of a valid convolution's backward-data.
    static let smallGeometries = [
        same(2, 3, 5, 9, 11), valid(1, 4, 3, 13, 7), same(1, 2, 2, 1, 1), valid(3, 1, 2, 3, 3),
        same(1, 5, 4, 6, 17), valid(2, 3, 4, 10, 10), same(3, 5, 4, 6, 17), same(2, 6, 7, 23, 21),
        ConvGeometry(batch: 1, inChannels: 3, height: 7, width: 8, outChannels: 2, kernelHeight: 3, kernelWidth: 3,
                     padTop: 0, padBottom: 1, padLeft: 2, padRight: 0),
        ConvGeometry(batch: 2, inChannels: 2, height: 5, width: 6, outChannels: 3, kernelHeight: 3, kernelWidth: 3,
                     padTop: 2, padBottom: 2, padLeft: 2, padRight: 2),
    ]

    func testSmallGeometriesMatchDirectLoops() {
        let geometries = Self.smallGeometries
        for (i, g) in geometries.enumerated() {
            XCTAssertTrue(WinogradConvolution.eligible(g))
            let (x, w, b, dy, _) = kernelOperands(g, seed: UInt64(900 + 10 * i))
            let expected = directConvolution(g, x: x.scalars, w: w.scalars, bias: b.scalars, dy: dy.scalars)
            for tile in WinogradTile.allCases {
                for (threads, parallelism) in [(1, ConvolutionPolicy.Parallelism.automatic), (2, .lanes), (2, .splitGemm)] {
                    let policy = ConvolutionPolicy(parallelism: parallelism, algorithm: .winograd(tile))
                    let y = withThreads(threads) { winogradForward(g, x, w, b, policy: policy) }
                    XCTAssertLessThan(relativeError(y, expected.y), Self.relativeBound[tile]!,
                                      "geometry \(i) \(g), \(tile), \(threads) threads, \(parallelism)")
                }
            }
        }
    }

    /// The weight gradient by Winograd against the direct loop: `smallGeometries`, every parallelism, and workspace limits that cut the
    /// tile rows into blocks (summed into one gradient) or leave no room (the exact paths take it).
    func testWeightGradientMatchesDirectLoops() {
        let geometries = Self.smallGeometries
        for (i, g) in geometries.enumerated() {
            let (x, w, b, dy, _) = kernelOperands(g, seed: UInt64(1500 + 10 * i))
            let expected = directConvolution(g, x: x.scalars, w: w.scalars, bias: b.scalars, dy: dy.scalars).dw
            for tile in WinogradTile.allCases {
                let tileRowBytes = 4 * tile.points * (g.inChannels + g.outChannels) * ConvolutionKernels.paddedStride(g.outWidth)
                let filterBytes = 4 * tile.points * g.inChannels * g.outChannels
                for limit in [ConvolutionWorkspace.defaultLimitBytes, 2 * (filterBytes + tileRowBytes), 256] {
                    for (threads, parallelism) in [(1, ConvolutionPolicy.Parallelism.automatic), (2, .lanes), (2, .splitGemm)] {
                        let policy = ConvolutionPolicy(parallelism: parallelism, algorithm: .winograd(tile))
                        let dw = Tensor(repeating: .nan, shape: w.shape)
                        withThreads(threads) {
                            withWorkspaceLimit(limit) {
                                ConvolutionKernels.backwardWeight(g, input: x.storage.pointer, outputGradient: dy.storage.pointer,
                                                                  weightGradient: dw.storage.pointer, biasGradient: nil, policy: policy)
                            }
                        }
                        XCTAssertLessThan(relativeError(dw, expected), Self.weightGradientBound[tile]!,
                                          "geometry \(i) \(g), \(tile), limit \(limit), \(threads) threads, \(parallelism)")
                    }
                }
                XCTAssertNil(withWorkspaceLimit(256) {
                    WinogradConvolution.plan(g, tile: tile, parallelism: .automatic, filtersPerLane: true)
                })
            }
        }
    }

    /// Tight workspace limits cut the tile rows into several blocks (all rows still covered once
    /// and the scratch within the limit); a limit too small for one tile row falls back to the
    /// exact paths, with the same results.
    func testBlocksWithinWorkspaceLimit() {
        let g = Self.same(2, 6, 7, 23, 21)
        let (x, w, b, dy, _) = kernelOperands(g, seed: 950)
        let expected = directConvolution(g, x: x.scalars, w: w.scalars, bias: b.scalars, dy: dy.scalars)
        for tile in WinogradTile.allCases {
            let tileRowBytes = 4 * tile.points * (g.inChannels + g.outChannels) * ConvolutionKernels.paddedStride(g.outWidth)
            let filterBytes = 4 * tile.points * g.inChannels * g.outChannels
            for limit in [ConvolutionWorkspace.defaultLimitBytes, filterBytes + 3 * tileRowBytes, filterBytes + tileRowBytes, 1024] {
                for threads in [1, 2] {
                    withThreads(threads) {
                        withWorkspaceLimit(limit) {
                            let label = "\(tile) limit \(limit) threads \(threads)"
                            if let p = WinogradConvolution.plan(g, tile: tile, parallelism: .automatic) {
                                XCTAssertLessThanOrEqual(p.filterFloats + p.lanes * p.laneFloats, ConvolutionWorkspace.limitFloats, label)
                                var covered = [Int](repeating: 0, count: p.tilesY)
                                for item in 0..<p.blocksPerImage { for r in p.block(item).rows { covered[r] += 1 } }
                                XCTAssertEqual(covered, [Int](repeating: 1, count: p.tilesY), label)
                            } else {
                                XCTAssertLessThan(limit, filterBytes + 2 * tileRowBytes, "\(label): should have planned")
                            }
                            let y = winogradForward(g, x, w, b, policy: ConvolutionPolicy(algorithm: .winograd(tile)))
                            XCTAssertLessThan(relativeError(y, expected.y), Self.relativeBound[tile]!, label)
                        }
                    }
                }
            }
            XCTAssertNil(withWorkspaceLimit(1024) { WinogradConvolution.plan(g, tile: tile, parallelism: .automatic) })
        }
    }

    /// Every 3x3 convolution shape (Cin -> Cout) of the depth-4 U-Net with `f` base filters:
    /// encoder, bottleneck and decoder (on concatenated inputs).
    static func unetShapes(base f: Int) -> [(Int, Int)] {
        [(1, f), (f, f), (f, 2 * f), (2 * f, 2 * f), (2 * f, 4 * f), (4 * f, 4 * f), (4 * f, 8 * f), (8 * f, 8 * f),
         (8 * f, 16 * f), (16 * f, 16 * f), (24 * f, 8 * f), (12 * f, 4 * f), (6 * f, 2 * f), (3 * f, f)]
    }

    /// The forward of every U-Net layer shape (base 16 and 64) on odd sizes, same and valid
    /// padding, within `relativeBound`; and Winograd's error is of the order of the exact path's
    /// or small next to the bound.
    func testUNetLayerShapesWithinBound() {
        var worst: [WinogradTile: Double] = [.f2: 0, .f4: 0], worstGradient = worst
        for base in [16, 64] {
            for (s, (cin, cout)) in Self.unetShapes(base: base).enumerated() {
                // Small planes for the widest layers keep the Double reference fast.
                let (h, w) = cin * cout > 100_000 ? (3, 5) : cin * cout > 20_000 ? (5, 6) : (11, 9)
                for (p, g) in [Self.same(1, cin, cout, h, w), Self.valid(1, cin, cout, h + 2, w + 2)].enumerated() {
                    let seed = UInt64(1000 + 20 * s + p + base)
                    let x = randomTensor([g.batch, cin, g.height, g.width], seed: seed)
                    let wt = randomTensor([cout, cin, 3, 3], seed: seed + 7)
                    let ref = directForward(g, x.scalars, wt.scalars)
                    let dy = randomTensor([g.batch, cout, g.outHeight, g.outWidth], seed: seed + 11)
                    let refGradient = directWeightGradient(g, x.scalars, dy.scalars)
                    for tile in WinogradTile.allCases {
                        let policy = ConvolutionPolicy(algorithm: .winograd(tile))
                        let y = winogradForward(g, x, wt, nil, policy: policy)
                        let e = relativeError(y, ref)
                        worst[tile] = Swift.max(worst[tile]!, e)
                        XCTAssertLessThan(e, Self.relativeBound[tile]!, "base \(base) \(cin)->\(cout) \(g), \(tile)")
                        let dw = Tensor(repeating: .nan, shape: wt.shape)
                        ConvolutionKernels.backwardWeight(g, input: x.storage.pointer, outputGradient: dy.storage.pointer,
                                                          weightGradient: dw.storage.pointer, biasGradient: nil, policy: policy)
                        let eg = relativeError(dw, refGradient)
                        worstGradient[tile] = Swift.max(worstGradient[tile]!, eg)
                        XCTAssertLessThan(eg, Self.weightGradientBound[tile]!, "weight gradient base \(base) \(cin)->\(cout) \(g), \(tile)")
                    }
                }
            }
        }
        print("WinogradTests: worst relative error over the U-Net shapes: F2 \(worst[.f2]!), F4 \(worst[.f4]!); "
              + "weight gradient F2 \(worstGradient[.f2]!), F4 \(worstGradient[.f4]!)")
    }

    /// Backward-data under Winograd (it runs as the flipped forward) agrees with the exact path,
    /// with and without an input-side bias, for same and valid padding.
    func testBackwardDataMatchesExactPath() {
        for (i, g) in [Self.same(2, 24, 16, 13, 10), Self.valid(1, 16, 32, 12, 15), Self.same(1, 48, 16, 9, 9)].enumerated() {
            let exact = kernelResults(g, seed: UInt64(1200 + 10 * i), policy: ConvolutionPolicy(algorithm: .exact))
            for tile in WinogradTile.allCases {
                let policy = ConvolutionPolicy(algorithm: .winograd(tile))
                XCTAssertTrue(ConvolutionKernels.backwardDataPath(g, policy: policy).hasPrefix("flipped winograd"))
                let fast = kernelResults(g, seed: UInt64(1200 + 10 * i), policy: policy)
                for (name, k) in [("forward", 0), ("backward-data", 1), ("backward-data + bias", 2)] {
                    let reference = exact[k].scalars.map(Double.init)
                    XCTAssertLessThan(relativeError(fast[k], reference), Self.relativeBound[tile]!, "\(name) geometry \(i) \(tile)")
                }
                XCTAssertTrue(ConvolutionKernels.backwardWeightPath(g, policy: policy).hasPrefix("winograd"))
                XCTAssertLessThan(relativeError(fast[3], exact[3].scalars.map(Double.init)), Self.weightGradientBound[tile]!,
                                  "backward-weight geometry \(i) \(tile)")
                XCTAssertEqual(fast[4].scalars, exact[4].scalars, "bias gradient geometry \(i) \(tile)")
            }
        }
    }

    func testGradientsThroughConv2dWithWinogradForced() {
        for tile in WinogradTile.allCases {
            for padding in [ConvPadding.same, .valid] {
                ConvolutionPolicy.$forOps.withValue(ConvolutionPolicy(algorithm: .winograd(tile))) {
                    let x = randomTensor([2, 3, 7, 6], seed: 1300)
                    let w = randomTensor([4, 3, 3, 3], seed: 1301, range: -0.5...0.5)
                    let b = randomTensor([4], seed: 1302)
                    checkGradients([x, w, b]) { t in conv2d(t[0], weight: t[1], bias: t[2], padding: padding) }
                }
            }
        }
    }

    /// `ConvolutionMode.exact` and `.exact` policies keep Winograd off; a forced tile applies only
    /// to eligible geometries.
    func testSwitches() {
        let g = Self.same(1, 64, 64, 64, 64)
        XCTAssertNil(ConvolutionKernels.winogradTile(g, ConvolutionPolicy(algorithm: .exact)))
        XCTAssertEqual(ConvolutionKernels.winogradTile(g, ConvolutionPolicy(algorithm: .winograd(.f2))), .f2)
        var strided = g
        strided.stride = 2
        XCTAssertNil(ConvolutionKernels.winogradTile(strided, ConvolutionPolicy(algorithm: .winograd(.f4))))
        var dilated = g
        dilated.dilation = 2
        XCTAssertNil(ConvolutionKernels.winogradTile(dilated, ConvolutionPolicy(algorithm: .winograd(.f4))))
        let saved = ConvolutionMode.current
        defer { ConvolutionMode.current = saved }
        ConvolutionMode.current = .exact
        XCTAssertNil(ConvolutionKernels.winogradTile(g, .automatic))
        XCTAssertFalse(ConvolutionKernels.forwardPath(g).hasPrefix("winograd"))
    }

    /// The default schedule on the U-Net's layers: F(4x4) on the thin-to-mid layers with enough
    /// tiles, F(2x2) with few tiles or wide layers, the exact path for one channel and the widest
    /// layers; with a 256-bit BLAS kernel, F(2x2) reaches the 512->1024 and 1536->512 layers too.
    func testAutomaticScheduleOnUNetLayers() {
        let rows: [(ConvGeometry, avx512: WinogradTile?, avx2: WinogradTile?)] = [
            (Self.same(1, 1, 64, 512, 512), nil, nil),          // first layer: one input channel
            (Self.same(1, 64, 64, 512, 512), .f4, .f4),
            (Self.same(4, 16, 16, 256, 256), .f4, .f4),
            (Self.same(1, 512, 512, 64, 64), .f2, .f2),         // above 768x256 pairs
            (Self.same(4, 256, 256, 16, 16), .f2, .f2),         // 64 tiles
            (Self.same(1, 512, 1024, 32, 32), nil, .f2),        // base-64 bottleneck-a
            (Self.same(1, 1536, 512, 64, 64), nil, .f2),        // base-64 dec4a
            (Self.same(1, 1024, 1024, 32, 32), nil, nil),       // level with the exact path on both
            (Self.same(1, 64, 64, 8, 8), nil, nil),             // 4 tiles
        ]
        for (g, avx512, avx2) in rows {
            let name = "\(g.inChannels)->\(g.outChannels) @\(g.height), batch \(g.batch)"
            XCTAssertEqual(ConvolutionKernels.automaticWinogradTile(g, blasVectorBits: 512), avx512, name)
            XCTAssertEqual(ConvolutionKernels.automaticWinogradTile(g, blasVectorBits: 256), avx2, name)
            XCTAssertEqual(ConvolutionKernels.automaticWinogradTile(g, blasVectorBits: nil), avx512, name)
        }
        XCTAssertEqual(BLASKernel.vectorBits(ofCore: "Zen"), 256)
        XCTAssertEqual(BLASKernel.vectorBits(ofCore: "Cooperlake"), 512)
        XCTAssertNil(BLASKernel.vectorBits(ofCore: "NEOVERSEN1"))
    }

    /// The rows of the direct 3x3 convolution `g`: for each image, filter tap and output row whose
    /// input row exists, `body(tap, xRow, yRow, columns, shift)` with `tap` the weight index, the
    /// starts of the input and output rows, and the output columns whose input column
    /// `ox + shift` exists.
    func forEachDirectRow(_ g: ConvGeometry, _ body: (Int, Int, Int, Range<Int>, Int) -> Void) {
        let outH = g.outHeight, outW = g.outWidth
        for n in 0..<g.batch { for co in 0..<g.outChannels { for ci in 0..<g.inChannels { for ky in 0..<3 { for kx in 0..<3 {
            let tap = ((co * g.inChannels + ci) * 3 + ky) * 3 + kx
            let shift = kx - g.padLeft
            let columns = Swift.max(0, -shift)..<Swift.max(Swift.max(0, -shift), Swift.min(outW, g.width - shift))
            for oy in 0..<outH {
                let iy = oy - g.padTop + ky
                if iy < 0 || iy >= g.height { continue }
                body(tap, ((n * g.inChannels + ci) * g.height + iy) * g.width, ((n * g.outChannels + co) * outH + oy) * outW,
                     columns, shift)
            }
        } } } } }
    }

    /// Direct weight gradient in Double: `dw[co][ci][ky][kx] = sum dy[co][oy][ox] x[ci][iy][ix]`.
    func directWeightGradient(_ g: ConvGeometry, _ x: [Float], _ dy: [Float]) -> [Double] {
        var dw = [Double](repeating: 0, count: g.outChannels * g.inChannels * 9)
        forEachDirectRow(g) { tap, xRow, yRow, columns, shift in
            var acc: Double = 0
            for ox in columns { acc += Double(dy[yRow + ox]) * Double(x[xRow + ox + shift]) }
            dw[tap] += acc
        }
        return dw
    }

    /// Direct forward convolution in Double (no bias).
    func directForward(_ g: ConvGeometry, _ x: [Float], _ w: [Float]) -> [Double] {
        var y = [Double](repeating: 0, count: g.batch * g.outChannels * g.outHeight * g.outWidth)
        forEachDirectRow(g) { tap, xRow, yRow, columns, shift in
            let wv = Double(w[tap])
            for ox in columns { y[yRow + ox] += wv * Double(x[xRow + ox + shift]) }
        }
        return y
    }
}
