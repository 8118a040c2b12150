@testable import Tensor
import XCTest

/// Direct convolution, the oracle: seven nested loops, Double accumulation.
func naiveConv2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: Int, padding: ConvPadding, dilation: Int) -> Tensor {
    let (n, cin, h, wd) = x.shape4("naive")
    let (cout, _, kh, kw) = w.shape4("naive")
    let pad = padding.resolve(height: h, width: wd, kernelHeight: kh, kernelWidth: kw, stride: stride, dilation: dilation)
    let oh = (h + pad.top + pad.bottom - dilation * (kh - 1) - 1) / stride + 1
    let ow = (wd + pad.left + pad.right - dilation * (kw - 1) - 1) / stride + 1
    let xs = x.scalars, ws = w.scalars, bs = b?.scalars
    var out = [Float](repeating: 0, count: n * cout * oh * ow)
    for i in 0..<n {
        for co in 0..<cout {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var acc = Double(bs?[co] ?? 0)
                    for ci in 0..<cin {
                        for ky in 0..<kh {
                            let iy = oy * stride - pad.top + ky * dilation
                            if iy < 0 || iy >= h { continue }
                            for kx in 0..<kw {
                                let ix = ox * stride - pad.left + kx * dilation
                                if ix < 0 || ix >= wd { continue }
                                acc += Double(xs[((i * cin + ci) * h + iy) * wd + ix])
                                    * Double(ws[((co * cin + ci) * kh + ky) * kw + kx])
                            }
                        }
                    }
                    out[((i * cout + co) * oh + oy) * ow + ox] = Float(acc)
                }
            }
        }
    }
    return Tensor(shape: [n, cout, oh, ow], scalars: out)
}

/// Direct transposed convolution: every input pixel spreads its value times the kernel.
func naiveConvTranspose2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: Int, padding: Int, outputPadding: Int) -> Tensor {
    let (n, cin, h, wd) = x.shape4("naive")
    let (_, cout, kh, kw) = w.shape4("naive")
    let oh = (h - 1) * stride - 2 * padding + kh + outputPadding
    let ow = (wd - 1) * stride - 2 * padding + kw + outputPadding
    let xs = x.scalars, ws = w.scalars, bs = b?.scalars
    var out = [Double](repeating: 0, count: n * cout * oh * ow)
    for i in 0..<n {
        for co in 0..<cout { for p in 0..<(oh * ow) { out[(i * cout + co) * oh * ow + p] = Double(bs?[co] ?? 0) } }
        for ci in 0..<cin {
            for iy in 0..<h {
                for ix in 0..<wd {
                    let v = Double(xs[((i * cin + ci) * h + iy) * wd + ix])
                    for co in 0..<cout {
                        for ky in 0..<kh {
                            let oy = iy * stride - padding + ky
                            if oy < 0 || oy >= oh { continue }
                            for kx in 0..<kw {
                                let ox = ix * stride - padding + kx
                                if ox < 0 || ox >= ow { continue }
                                out[((i * cout + co) * oh + oy) * ow + ox] += v * Double(ws[((ci * cout + co) * kh + ky) * kw + kx])
                            }
                        }
                    }
                }
            }
        }
    }
    return Tensor(shape: [n, cout, oh, ow], scalars: out.map(Float.init))
}

func dot(_ a: Tensor, _ b: Tensor) -> Double {
    let x = a.scalars, y = b.scalars
    var s = 0.0
    for i in 0..<x.count { s += Double(x[i]) * Double(y[i]) }
    return s
}

/// Runs `body` with `Threads.count` set to `n`, restoring it afterwards.
func withThreads<R>(_ n: Int, _ body: () -> R) -> R {
    let saved = Threads.count
    Threads.count = n
    defer { Threads.count = saved }
    return body()
}

/// Runs `body` with `ConvolutionWorkspace.limitBytes` set to `bytes`, restoring it afterwards.
func withWorkspaceLimit<R>(_ bytes: Int, _ body: () -> R) -> R {
    let saved = ConvolutionWorkspace.limitBytes
    ConvolutionWorkspace.limitBytes = bytes
    defer { ConvolutionWorkspace.limitBytes = saved }
    return body()
}

struct ConvCase: CustomStringConvertible {
    var n = 1, cin = 3, h = 7, w = 6, cout = 4, kh = 3, kw = 3, stride = 1
    var padding: ConvPadding = .valid
    var dilation = 1
    var bias = true
    var description: String {
        "n\(n) \(cin)->\(cout) \(h)x\(w) k\(kh)x\(kw) s\(stride) \(padding) d\(dilation) bias \(bias)"
    }
    func tensors(seed: UInt64) -> (Tensor, Tensor, Tensor?) {
        (randomTensor([n, cin, h, w], seed: seed), randomTensor([cout, cin, kh, kw], seed: seed + 1),
         bias ? randomTensor([cout], seed: seed + 2) : nil)
    }
}

final class ConvolutionTests: XCTestCase {
    static let cases: [ConvCase] = [
        ConvCase(),
        ConvCase(bias: false),
        ConvCase(stride: 2),
        ConvCase(h: 9, w: 8, stride: 2, padding: .same),
        ConvCase(padding: .same),
        ConvCase(n: 3, cin: 2, h: 11, w: 9, cout: 5, padding: .same, dilation: 2),
        ConvCase(h: 8, w: 10, kh: 4, kw: 2, padding: .same),
        ConvCase(padding: .explicit(top: 2, bottom: 0, left: 1, right: 3)),
        ConvCase(n: 2, stride: 2, padding: .explicit(top: 0, bottom: 1, left: 2, right: 0), dilation: 2),
        ConvCase(n: 2, cin: 1, h: 13, w: 5, cout: 3, padding: .same),
        ConvCase(n: 2, cin: 5, h: 6, w: 7, cout: 3, kh: 1, kw: 1),
        ConvCase(n: 1, cin: 5, h: 6, w: 7, cout: 3, kh: 1, kw: 1, bias: false),
        ConvCase(cin: 4, h: 9, w: 7, kh: 1, kw: 1, stride: 2),
        ConvCase(n: 2, cin: 3, h: 8, w: 6, cout: 4, kh: 2, kw: 2, stride: 2),
        ConvCase(n: 1, cin: 2, h: 5, w: 5, cout: 2, kh: 5, kw: 5),
    ]

    func testSamePaddingSplitsExtraToBottomRight() {
        let p = ConvPadding.same.resolve(height: 10, width: 10, kernelHeight: 4, kernelWidth: 3, stride: 1, dilation: 1)
        XCTAssertEqual([p.top, p.bottom, p.left, p.right], [1, 2, 1, 1])
        let d = ConvPadding.same.resolve(height: 10, width: 10, kernelHeight: 3, kernelWidth: 3, stride: 1, dilation: 2)
        XCTAssertEqual([d.top, d.bottom, d.left, d.right], [2, 2, 2, 2])
        let x = randomTensor([1, 2, 9, 8], seed: 3), w = randomTensor([3, 2, 4, 3], seed: 4)
        XCTAssertEqual(conv2d(x, weight: w, padding: .same).shape, [1, 3, 9, 8])
        XCTAssertEqual(conv2d(x, weight: w, stride: 2, padding: .same).shape, [1, 3, 5, 4])
        // A kernel wider than the padded input is rejected even where integer division would round up.
        XCTAssertFalse(ConvGeometry(batch: 1, inChannels: 1, height: 3, width: 8, outChannels: 1,
                                    kernelHeight: 4, kernelWidth: 1, stride: 2).isValid)
        XCTAssertTrue(ConvGeometry(batch: 1, inChannels: 1, height: 4, width: 8, outChannels: 1,
                                   kernelHeight: 4, kernelWidth: 1, stride: 2).isValid)
    }

    func testForwardMatchesNaive() {
        for (i, c) in Self.cases.enumerated() {
            let (x, w, b) = c.tensors(seed: UInt64(10 * i + 1))
            let y = conv2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding, dilation: c.dilation)
            let ref = naiveConv2d(x, w, b, stride: c.stride, padding: c.padding, dilation: c.dilation)
            XCTAssertEqual(y.shape, ref.shape, "\(c)")
            if y.shape == ref.shape {
                XCTAssertLessThan(y.maxAbsoluteDifference(to: ref), 1e-5, "\(c)")
            }
        }
    }

    func testLargerForwardMatchesNaive() {
        // Big enough that blocks run on both threads and im2col splits by channel.
        let x = randomTensor([1, 16, 40, 37], seed: 5), w = randomTensor([8, 16, 3, 3], seed: 6)
        let b = randomTensor([8], seed: 7)
        let ref = naiveConv2d(x, w, b, stride: 1, padding: .same, dilation: 1)
        for threads in [1, 2] {
            for limit in [ConvolutionWorkspace.defaultLimitBytes, 50_000] {
                let y = withThreads(threads) { withWorkspaceLimit(limit) { conv2d(x, weight: w, bias: b, padding: .same) } }
                XCTAssertLessThan(y.maxAbsoluteDifference(to: ref), 1e-4, "threads \(threads) limit \(limit)")
            }
        }
    }

    /// Tiny workspace limits cut the output into many blocks (even single pixels); results must
    /// match the unblocked run, forward and both backward kernels.
    func testWorkspaceBlockingMatchesUnblocked() {
        let shapes: [ConvCase] = [
            ConvCase(n: 2, cin: 4, h: 12, w: 11, cout: 5, padding: .same),
            ConvCase(n: 1, cin: 3, h: 10, w: 9, cout: 4, stride: 2, padding: .explicit(top: 1, bottom: 2, left: 0, right: 1), dilation: 2),
            ConvCase(n: 1, cin: 4, h: 10, w: 8, cout: 3, kh: 2, kw: 2, stride: 2),
        ]
        for c in shapes {
            let (x, w, b) = c.tensors(seed: 21)
            func run() -> (Tensor, Tensor, Tensor, Tensor) {
                let xl = x.requiringGradient(), wl = w.requiringGradient(), bl = b!.requiringGradient()
                let y = conv2d(xl, weight: wl, bias: bl, stride: c.stride, padding: c.padding, dilation: c.dilation)
                let seed = randomTensor(y.shape, seed: 99)
                y.backward(seed: seed)
                return (y, xl.gradient!, wl.gradient!, bl.gradient!)
            }
            let whole = run()
            for limit in [4096, 200, 1] {
                let blocked = withWorkspaceLimit(limit) { run() }
                XCTAssertLessThan(blocked.0.maxAbsoluteDifference(to: whole.0), 1e-5, "forward \(c) limit \(limit)")
                XCTAssertLessThan(blocked.1.maxAbsoluteDifference(to: whole.1), 1e-5, "dx \(c) limit \(limit)")
                XCTAssertLessThan(blocked.2.maxAbsoluteDifference(to: whole.2), 1e-4, "dw \(c) limit \(limit)")
                XCTAssertLessThan(blocked.3.maxAbsoluteDifference(to: whole.3), 1e-4, "db \(c) limit \(limit)")
            }
        }
        // The pool keeps buffers for reuse but never much more than the limit allows.
        XCTAssertLessThanOrEqual(ConvolutionWorkspace.pooledBytes, 2 * ConvolutionWorkspace.limitBytes + (1 << 20))
    }

    func testTransposedMatchesNaive() {
        struct T { var n, cin, h, w, cout, k, stride, padding, outputPadding: Int; var bias: Bool }
        let cases = [
            T(n: 2, cin: 3, h: 5, w: 4, cout: 4, k: 2, stride: 2, padding: 0, outputPadding: 0, bias: true),
            T(n: 1, cin: 3, h: 5, w: 4, cout: 2, k: 2, stride: 2, padding: 0, outputPadding: 1, bias: false),
            T(n: 2, cin: 2, h: 4, w: 5, cout: 3, k: 3, stride: 2, padding: 1, outputPadding: 1, bias: true),
            T(n: 1, cin: 3, h: 6, w: 3, cout: 2, k: 3, stride: 1, padding: 0, outputPadding: 0, bias: true),
            T(n: 1, cin: 2, h: 3, w: 4, cout: 3, k: 4, stride: 3, padding: 2, outputPadding: 2, bias: true),
            T(n: 2, cin: 4, h: 6, w: 6, cout: 3, k: 1, stride: 1, padding: 0, outputPadding: 0, bias: true),
            T(n: 1, cin: 2, h: 4, w: 3, cout: 2, k: 3, stride: 3, padding: 0, outputPadding: 0, bias: true),
        ]
        for (i, c) in cases.enumerated() {
            let x = randomTensor([c.n, c.cin, c.h, c.w], seed: UInt64(40 + i))
            let w = randomTensor([c.cin, c.cout, c.k, c.k], seed: UInt64(50 + i))
            let b = c.bias ? randomTensor([c.cout], seed: UInt64(60 + i)) : nil
            let y = convTranspose2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding, outputPadding: c.outputPadding)
            let ref = naiveConvTranspose2d(x, w, b, stride: c.stride, padding: c.padding, outputPadding: c.outputPadding)
            XCTAssertEqual(y.shape, ref.shape, "case \(i)")
            if y.shape == ref.shape { XCTAssertLessThan(y.maxAbsoluteDifference(to: ref), 1e-5, "case \(i)") }
            // Small workspace: the same values.
            let blocked = withWorkspaceLimit(64) {
                convTranspose2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding, outputPadding: c.outputPadding)
            }
            XCTAssertLessThan(blocked.maxAbsoluteDifference(to: ref), 1e-5, "case \(i) blocked")
        }
    }

    /// Both backward-data paths (column matrix + col2im, and the forward kernel on the flipped
    /// kernel) against a direct loop, on stride-1 geometries with dilation, asymmetric and valid
    /// padding, non-square kernels, Cin above and below Cout, and an added bias.
    func testBackwardDataPathsMatchDirectLoop() {
        let geometries = [
            ConvGeometry(batch: 2, inChannels: 5, height: 9, width: 8, outChannels: 3, kernelHeight: 3, kernelWidth: 3,
                         padTop: 1, padBottom: 1, padLeft: 1, padRight: 1),
            ConvGeometry(batch: 1, inChannels: 2, height: 7, width: 9, outChannels: 6, kernelHeight: 3, kernelWidth: 3),
            ConvGeometry(batch: 2, inChannels: 4, height: 10, width: 9, outChannels: 3, kernelHeight: 3, kernelWidth: 3,
                         dilation: 2, padTop: 2, padBottom: 2, padLeft: 2, padRight: 2),
            ConvGeometry(batch: 1, inChannels: 6, height: 8, width: 7, outChannels: 4, kernelHeight: 2, kernelWidth: 3,
                         padTop: 0, padBottom: 1, padLeft: 2, padRight: 0),
        ]
        for (i, g) in geometries.enumerated() {
            XCTAssertNotNil(ConvolutionKernels.transposedGeometry(g), "geometry \(i) should allow the flipped path")
            let w = randomTensor([g.outChannels, g.inChannels, g.kernelHeight, g.kernelWidth], seed: UInt64(300 + i))
            let dy = randomTensor([g.batch, g.outChannels, g.outHeight, g.outWidth], seed: UInt64(310 + i))
            let bias = randomTensor([g.inChannels], seed: UInt64(320 + i))
            // Direct: every output-gradient pixel spreads through every tap.
            let ws = w.scalars, ys = dy.scalars
            var expected = [Double](repeating: 0, count: g.batch * g.inChannels * g.inPixels)
            for n in 0..<g.batch {
                for ci in 0..<g.inChannels { for p in 0..<g.inPixels { expected[(n * g.inChannels + ci) * g.inPixels + p] = Double(bias.scalars[ci]) } }
                for co in 0..<g.outChannels { for oy in 0..<g.outHeight { for ox in 0..<g.outWidth {
                    let v = Double(ys[((n * g.outChannels + co) * g.outHeight + oy) * g.outWidth + ox])
                    for ci in 0..<g.inChannels { for ky in 0..<g.kernelHeight { for kx in 0..<g.kernelWidth {
                        let iy = oy - g.padTop + ky * g.dilation, ix = ox - g.padLeft + kx * g.dilation
                        if iy < 0 || iy >= g.height || ix < 0 || ix >= g.width { continue }
                        expected[((n * g.inChannels + ci) * g.height + iy) * g.width + ix] +=
                            v * Double(ws[((co * g.inChannels + ci) * g.kernelHeight + ky) * g.kernelWidth + kx])
                    } } }
                } } }
            }
            for path in [ConvolutionPolicy.BackwardData.columns, .flippedForward] {
                let dx = Tensor(repeating: 7, shape: [g.batch, g.inChannels, g.height, g.width])
                ConvolutionKernels.backwardData(g, outputGradient: dy.storage.pointer, weight: w.storage.pointer,
                                                inputGradient: dx.storage.pointer, addingBias: bias.storage.pointer,
                                                policy: ConvolutionPolicy(backwardData: path))
                let worst = zip(dx.scalars, expected).map { abs(Double($0) - $1) }.max() ?? 0
                XCTAssertLessThan(worst, 1e-5, "geometry \(i) \(path)")
            }
        }
        // Strided convolutions have no flipped form.
        XCTAssertNil(ConvolutionKernels.transposedGeometry(ConvGeometry(batch: 1, inChannels: 2, height: 8, width: 8, outChannels: 2,
                                                                         kernelHeight: 3, kernelWidth: 3, stride: 2)))
    }

    /// <conv(x), y> == <x, convT(y)> with the same weight: the two ops are adjoint.
    func testAdjointIdentity() {
        let settings: [(k: Int, stride: Int, padding: Int, h: Int)] = [(3, 1, 1, 9), (3, 2, 1, 9), (2, 2, 0, 8), (4, 2, 1, 10), (1, 1, 0, 7)]
        for (i, s) in settings.enumerated() {
            let w = randomTensor([5, 3, s.k, s.k], seed: UInt64(70 + i))   // conv: 3 -> 5; convT: 5 -> 3
            let x = randomTensor([2, 3, s.h, s.h], seed: UInt64(80 + i))
            let cx = conv2d(x, weight: w, stride: s.stride,
                            padding: .explicit(top: s.padding, bottom: s.padding, left: s.padding, right: s.padding))
            let y = randomTensor(cx.shape, seed: UInt64(90 + i))
            let outputPadding = s.h - ((cx.shape[2] - 1) * s.stride - 2 * s.padding + s.k)
            let ty = convTranspose2d(y, weight: w, stride: s.stride, padding: s.padding, outputPadding: outputPadding)
            XCTAssertEqual(ty.shape, x.shape)
            let lhs = dot(cx, y), rhs = dot(x, ty)
            XCTAssertEqual(lhs, rhs, accuracy: 1e-4 * max(1, abs(lhs)), "setting \(s)")
        }
    }

    func testConv2dGradients() {
        let settings: [ConvCase] = [
            ConvCase(n: 2, cin: 2, h: 5, w: 4, cout: 3, padding: .same),
            ConvCase(n: 1, cin: 2, h: 6, w: 5, cout: 2, stride: 2, padding: .explicit(top: 1, bottom: 0, left: 0, right: 2), dilation: 2),
            ConvCase(n: 2, cin: 3, h: 3, w: 4, cout: 2, kh: 1, kw: 1),
            ConvCase(n: 1, cin: 2, h: 4, w: 6, cout: 3, kh: 2, kw: 2, stride: 2, bias: false),
        ]
        for c in settings {
            let (x, w, b) = c.tensors(seed: 33)
            if let b {
                checkGradients([x, w, b]) { conv2d($0[0], weight: $0[1], bias: $0[2], stride: c.stride, padding: c.padding, dilation: c.dilation) }
            } else {
                checkGradients([x, w]) { conv2d($0[0], weight: $0[1], stride: c.stride, padding: c.padding, dilation: c.dilation) }
            }
        }
    }

    func testConvTranspose2dGradients() {
        let settings: [(cin: Int, cout: Int, h: Int, k: Int, stride: Int, padding: Int, outputPadding: Int)] = [
            (3, 2, 3, 2, 2, 0, 0), (2, 3, 3, 3, 2, 1, 1), (2, 2, 4, 3, 1, 1, 0),
        ]
        for s in settings {
            let x = randomTensor([2, s.cin, s.h, s.h + 1], seed: 5)
            let w = randomTensor([s.cin, s.cout, s.k, s.k], seed: 6)
            let b = randomTensor([s.cout], seed: 7)
            checkGradients([x, w, b]) {
                convTranspose2d($0[0], weight: $0[1], bias: $0[2], stride: s.stride, padding: s.padding, outputPadding: s.outputPadding)
            }
        }
    }

    func testGradientOnlyForSomeInputs() {
        let x = randomTensor([1, 2, 5, 5], seed: 1), w = randomTensor([3, 2, 3, 3], seed: 2).requiringGradient()
        let b = randomTensor([3], seed: 3)
        conv2d(x, weight: w, bias: b).sum().backward()
        XCTAssertEqual(w.gradient?.shape, [3, 2, 3, 3])
        let xl = x.requiringGradient()
        conv2d(xl, weight: w.detached, bias: b).sum().backward()
        XCTAssertEqual(xl.gradient?.shape, [1, 2, 5, 5])
    }

    /// One thread and two give the same values (up to float reassociation in BLAS and the weight
    /// gradient's partial sums), for shapes that take every schedule, under each parallelism policy.
    func testResultsIndependentOfThreadCount() {
        let shapes: [ConvCase] = [
            ConvCase(n: 1, cin: 16, h: 48, w: 40, cout: 8, padding: .same),
            ConvCase(n: 3, cin: 8, h: 20, w: 21, cout: 6, stride: 2, padding: .same),
            ConvCase(n: 1, cin: 16, h: 32, w: 32, cout: 8, kh: 1, kw: 1),
            ConvCase(n: 1, cin: 16, h: 32, w: 32, cout: 8, kh: 2, kw: 2, stride: 2),
            ConvCase(n: 1, cin: 8, h: 12, w: 70, cout: 8, padding: .same),
        ]
        for c in shapes {
            let g = c.geometry
            let one = withThreads(1) { withWorkspaceLimit(1 << 16) { kernelResults(g, seed: 12, policy: .automatic) } }
            for parallelism in ConvolutionPolicy.Parallelism.allCases {
                let policy = ConvolutionPolicy(parallelism: parallelism)
                let two = withThreads(2) { withWorkspaceLimit(1 << 16) { kernelResults(g, seed: 12, policy: policy) } }
                for (i, (a, b)) in zip(one, two).enumerated() {
                    let scale = max(1, a.scalars.map(abs).max() ?? 1)
                    XCTAssertLessThan(a.maxAbsoluteDifference(to: b) / scale, 1e-5, "\(c) \(parallelism) result \(i)")
                }
            }
        }
    }

    /// Every policy (schedule, backward-data path, weight-gradient form, tap GEMMs on or off) gives
    /// the direct loops' values, with the default workspace and one small enough to cut many blocks.
    func testEveryPolicyMatchesDirectLoops() {
        let geometries = [
            // Tap GEMMs apply; Cin == Cout.
            ConvCase(n: 2, cin: 8, h: 6, w: 66, cout: 8, padding: .same).geometry,
            // Stride 1, Cin > Cout, too narrow for tap GEMMs; dilated.
            ConvCase(n: 2, cin: 5, h: 9, w: 8, cout: 3, padding: .same, dilation: 2).geometry,
            // Strided, asymmetric padding.
            ConvCase(n: 2, cin: 3, h: 9, w: 8, cout: 4, stride: 2, padding: .explicit(top: 1, bottom: 0, left: 2, right: 1)).geometry,
            // Pointwise, and the non-overlapping k2 s2 scatter.
            ConvCase(n: 3, cin: 5, h: 6, w: 7, cout: 3, kh: 1, kw: 1).geometry,
            ConvCase(n: 1, cin: 3, h: 8, w: 6, cout: 4, kh: 2, kw: 2, stride: 2).geometry,
        ]
        var policies: [ConvolutionPolicy] = []
        for parallelism in ConvolutionPolicy.Parallelism.allCases {
            for backwardData in [ConvolutionPolicy.BackwardData.automatic, .flippedForward, .columns] {
                for weightGradient in [ConvolutionPolicy.WeightGradient.automatic, .transposed, .plain] {
                    for tapGemms in [true, false] {
                        policies.append(ConvolutionPolicy(parallelism: parallelism, backwardData: backwardData,
                                                          weightGradient: weightGradient, tapGemms: tapGemms))
                    }
                }
            }
        }
        for (i, g) in geometries.enumerated() {
            XCTAssertEqual(TapConvolution.applies(to: g), i == 0, "geometry \(i)")
            let seed = UInt64(700 + 10 * i)
            let (x, w, b, dy, inBias) = kernelOperands(g, seed: seed)
            let expected = directConvolution(g, x: x.scalars, w: w.scalars, bias: b.scalars, dy: dy.scalars)
            let dys = dy.scalars, biases = inBias.scalars
            let db = (0..<g.outChannels).map { co in
                (0..<g.batch).reduce(0.0) { sum, n in
                    let plane = (n * g.outChannels + co) * g.outPixels
                    return sum + dys[plane..<(plane + g.outPixels)].reduce(0.0) { $0 + Double($1) }
                }
            }
            let dxBias = expected.dx.enumerated().map { j, v in v + Double(biases[j / g.inPixels % g.inChannels]) }
            for limit in [ConvolutionWorkspace.defaultLimitBytes, 4096] {
                for policy in policies {
                    let r = withThreads(2) { withWorkspaceLimit(limit) { kernelResults(g, seed: seed, policy: policy) } }
                    let label = "geometry \(i) limit \(limit) \(policy)"
                    XCTAssertLessThan(worstDifference(r[0], expected.y), 1e-4, "forward, \(label)")
                    XCTAssertLessThan(worstDifference(r[1], expected.dx), 1e-4, "backward-data, \(label)")
                    XCTAssertLessThan(worstDifference(r[2], dxBias), 1e-4, "backward-data with bias, \(label)")
                    XCTAssertLessThan(worstDifference(r[3], expected.dw), 1e-3, "backward-weight, \(label)")
                    XCTAssertLessThan(worstDifference(r[4], db), 1e-3, "bias gradient, \(label)")
                }
            }
        }
    }

    /// The parallelism policy decides the schedule: `automatic` runs lanes only with at least as
    /// many work units as threads, `lanes` always (every GEMM on one thread, threads without a unit
    /// idle), `splitGemm` never (every GEMM split over the threads).
    func testParallelismPolicyChoosesTheSchedule() {
        withThreads(2) {
            // Backward-data of an overlapping kernel gives lanes whole images: one image is one unit.
            var g = ConvCase(n: 1, cin: 4, h: 6, w: 6, cout: 4, padding: .same).geometry
            /// [lanes, threads per GEMM]
            func schedule(_ p: ConvolutionPolicy.Parallelism) -> [Int] {
                let s = ConvolutionKernels.schedule(g, floatsPerPixel: g.columnRows, imagesOnly: true, parallelism: p)
                return [s.lanes, s.gemmThreads]
            }
            XCTAssertEqual(schedule(.automatic), [1, 2])
            XCTAssertEqual(schedule(.lanes), [1, 1])
            XCTAssertEqual(schedule(.splitGemm), [1, 2])
            g.batch = 2
            XCTAssertEqual(schedule(.automatic), [2, 1])
            XCTAssertEqual(schedule(.lanes), [2, 1])
            XCTAssertEqual(schedule(.splitGemm), [1, 2])

            // Tap GEMMs on a single output row: one band, one work item.
            var tap = ConvCase(n: 1, cin: 8, h: 1, w: 64, cout: 8, padding: .same).geometry
            /// [lanes, threads per GEMM]
            func plan(_ p: ConvolutionPolicy.Parallelism) -> [Int] {
                guard let plan = TapConvolution.plan(tap, scratchPerPixel: tap.outChannels, parallelism: p) else { return [] }
                return [plan.lanes, plan.gemmThreads]
            }
            XCTAssertEqual(plan(.automatic), [1, 2])
            XCTAssertEqual(plan(.lanes), [1, 1])
            XCTAssertEqual(plan(.splitGemm), [1, 2])
            tap.height = 8
            XCTAssertEqual(plan(.automatic), [2, 1])
            XCTAssertEqual(plan(.lanes), [2, 1])
            XCTAssertEqual(plan(.splitGemm), [1, 2])
        }
    }
}

extension ConvCase {
    /// The kernels' geometry of this case (padding resolved as `conv2d` resolves it).
    var geometry: ConvGeometry {
        let pad = padding.resolve(height: h, width: w, kernelHeight: kh, kernelWidth: kw, stride: stride, dilation: dilation)
        return ConvGeometry(batch: n, inChannels: cin, height: h, width: w, outChannels: cout, kernelHeight: kh, kernelWidth: kw,
                            stride: stride, dilation: dilation, padTop: pad.top, padBottom: pad.bottom,
                            padLeft: pad.left, padRight: pad.right)
    }
}

/// Seeded random input, weight, bias, output gradient and input-side bias `[Cin]` for `g`.
func kernelOperands(_ g: ConvGeometry, seed: UInt64) -> (x: Tensor, w: Tensor, b: Tensor, dy: Tensor, inBias: Tensor) {
    (randomTensor([g.batch, g.inChannels, g.height, g.width], seed: seed),
     randomTensor([g.outChannels, g.inChannels, g.kernelHeight, g.kernelWidth], seed: seed + 1),
     randomTensor([g.outChannels], seed: seed + 2),
     randomTensor([g.batch, g.outChannels, g.outHeight, g.outWidth], seed: seed + 3),
     randomTensor([g.inChannels], seed: seed + 4))
}

/// The kernels of `g` under `policy` on `kernelOperands(g, seed:)`: forward with the bias,
/// backward-data without and with the input-side bias, weight gradient, bias gradient.
func kernelResults(_ g: ConvGeometry, seed: UInt64, policy: ConvolutionPolicy) -> [Tensor] {
    let (x, w, b, dy, inBias) = kernelOperands(g, seed: seed)
    let y = Tensor(repeating: .nan, shape: dy.shape)
    let dx = Tensor(repeating: .nan, shape: x.shape), dxBias = Tensor(repeating: .nan, shape: x.shape)
    let dw = Tensor(repeating: .nan, shape: w.shape), db = Tensor(repeating: .nan, shape: b.shape)
    ConvolutionKernels.forward(g, input: x.storage.pointer, weight: w.storage.pointer, bias: b.storage.pointer,
                               output: y.storage.pointer, policy: policy)
    ConvolutionKernels.backwardData(g, outputGradient: dy.storage.pointer, weight: w.storage.pointer,
                                    inputGradient: dx.storage.pointer, policy: policy)
    ConvolutionKernels.backwardData(g, outputGradient: dy.storage.pointer, weight: w.storage.pointer,
                                    inputGradient: dxBias.storage.pointer, addingBias: inBias.storage.pointer, policy: policy)
    ConvolutionKernels.backwardWeight(g, input: x.storage.pointer, outputGradient: dy.storage.pointer,
                                      weightGradient: dw.storage.pointer, biasGradient: db.storage.pointer, policy: policy)
    return [y, dx, dxBias, dw, db]
}

/// Output, input gradient and weight gradient of `g` by direct loops in Double (bias added to the
/// output only): the oracle of the kernels.
func directConvolution(_ g: ConvGeometry, x: [Float], w: [Float], bias: [Float], dy: [Float]) -> (y: [Double], dx: [Double], dw: [Double]) {
    var y = [Double](repeating: 0, count: g.batch * g.outChannels * g.outPixels)
    var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
    for n in 0..<g.batch { for co in 0..<g.outChannels { for oy in 0..<g.outHeight { for ox in 0..<g.outWidth {
        let o = ((n * g.outChannels + co) * g.outHeight + oy) * g.outWidth + ox
        var acc = Double(bias[co])
        for ci in 0..<g.inChannels { for ky in 0..<g.kernelHeight { for kx in 0..<g.kernelWidth {
            let iy = oy * g.stride - g.padTop + ky * g.dilation, ix = ox * g.stride - g.padLeft + kx * g.dilation
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

/// The largest absolute difference between `t` and `expected`.
func worstDifference(_ t: Tensor, _ expected: [Double]) -> Double {
    precondition(t.count == expected.count, "worstDifference: \(t.count) values against \(expected.count)")
    return zip(t.scalars, expected).map { abs(Double($0) - $1) }.max() ?? 0
}
