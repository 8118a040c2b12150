@testable import Tensor
import Dispatch
import Foundation
import XCTest

/// A sweep of the convolution schedule's knobs on U-Net shapes, used to choose the defaults recorded
/// in docs/PERFORMANCE.md. Runs only with UNET_CONV_TUNING=1 (about a minute):
///   UNET_CONV_TUNING=1 swift test -c release --filter ConvolutionTuning
final class ConvolutionTuning: XCTestCase {
    /// The absolute targets through the public ops (allocation and tape included): 64->64 3x3
    /// at 512^2, batch 1, forward and forward+backward (input and weight gradients), wall time of
    /// runs in which other processes used under 10% of the cores.
    func testOpTimings() throws {
        guard ProcessInfo.processInfo.environment["UNET_CONV_TUNING"] == "1" else {
            throw XCTSkip("set UNET_CONV_TUNING=1 to run the op timings")
        }
        let cpuMode = ProcessInfo.processInfo.environment["UNET_CONV_TUNING_CPU"] == "1"
        let savedThreads = Threads.count
        if cpuMode { Threads.count = 1 }
        defer { Threads.count = savedThreads }
        let measure: (() -> Void) -> Double = cpuMode ? cpuTime : quietTime
        let x = randomTensor([1, 64, 512, 512], seed: 1), w = randomTensor([64, 64, 3, 3], seed: 2)
        let seed = randomTensor([1, 64, 512, 512], seed: 3)
        let f = measure { _ = withoutGradients { conv2d(x, weight: w, padding: .same) } }
        let g = ConvGeometry(batch: 1, inChannels: 64, height: 512, width: 512, outChannels: 64, kernelHeight: 3, kernelWidth: 3,
                             padTop: 1, padBottom: 1, padLeft: 1, padRight: 1)
        let out = Tensor(uninitializedShape: [1, 64, 512, 512])
        let kernelOnly = measure { ConvolutionKernels.forward(g, input: x.storage.pointer, weight: w.storage.pointer, bias: nil, output: out.storage.pointer) }
        let allocOnly = measure { let t = Tensor(uninitializedShape: [1, 64, 512, 512]); t.storage.pointer.update(repeating: 0, count: t.count) }
        print(String(format: "OPS kernel only %.1f ms, allocate+fill 64 MiB %.1f ms", kernelOnly * 1e3, allocOnly * 1e3))
        let fb = measure {
            let xl = x.requiringGradient(), wl = w.requiringGradient()
            conv2d(xl, weight: wl, padding: .same).backward(seed: seed)
            precondition(wl.gradient != nil && xl.gradient != nil)
        }
        print(String(format: "OPS conv2d 64->64 3x3 @512^2 batch 1, %d threads (%@): forward %.1f ms, forward+backward %.1f ms",
                     Threads.count, cpuMode ? "CPU time" : "wall time", f * 1e3, fb * 1e3))
    }

    /// The k2 s2 up-convolution the issue singles out: 128->128 at 256^2 input, forward.
    func testTransposedOpTiming() throws {
        guard ProcessInfo.processInfo.environment["UNET_CONV_TUNING"] == "1" else {
            throw XCTSkip("set UNET_CONV_TUNING=1 to run the op timings")
        }
        let x = randomTensor([1, 128, 256, 256], seed: 1), w = randomTensor([128, 128, 2, 2], seed: 2)
        let t = quietTime { _ = withoutGradients { convTranspose2d(x, weight: w, stride: 2) } }
        let flops = 2.0 * 128 * 128 * 4 * 256 * 256
        print(String(format: "OPS convTranspose2d k2 s2 128->128 @256^2 in, %d threads: forward %.1f ms (%.1f GFLOP/s)",
                     Threads.count, t * 1e3, flops / t / 1e9))
    }

    /// The 3x3 convolutions of a depth-4 U-Net with base `f` on `batch` x `size`^2 (name, cin, cout, size).
    static func unetConvs(base f: Int, size: Int) -> [(String, Int, Int, Int)] {
        [("enc1a", 1, f, size), ("enc1b", f, f, size), ("enc2a", f, 2 * f, size / 2), ("enc2b", 2 * f, 2 * f, size / 2),
         ("enc3a", 2 * f, 4 * f, size / 4), ("enc3b", 4 * f, 4 * f, size / 4), ("enc4a", 4 * f, 8 * f, size / 8),
         ("enc4b", 8 * f, 8 * f, size / 8), ("bott-a", 8 * f, 16 * f, size / 16), ("bott-b", 16 * f, 16 * f, size / 16),
         ("dec4a", 24 * f, 8 * f, size / 8), ("dec3a", 12 * f, 4 * f, size / 4), ("dec2a", 6 * f, 2 * f, size / 2),
         ("dec1a", 3 * f, f, size)]
    }

    /// A/B of the two backward-data paths (column matrix + col2im, or the forward kernel on the
    /// flipped kernel) on U-Net shapes: least time of 7 interleaved runs each.
    /// UNET_CONV_TUNING=1 UNET_CONV_TUNING_NET=16,256,4 swift test -c release --filter testBackwardDataPaths
    func testBackwardDataPaths() throws {
        guard ProcessInfo.processInfo.environment["UNET_CONV_TUNING"] == "1" else {
            throw XCTSkip("set UNET_CONV_TUNING=1 to run the backward-data comparison")
        }
        let net = (ProcessInfo.processInfo.environment["UNET_CONV_TUNING_NET"] ?? "16,256,4").split(separator: ",").compactMap { Int($0) }
        defer { ConvolutionKernels.backwardDataAsForward = nil }
        var totals = [0.0, 0.0]
        for (name, cin, cout, size) in Self.unetConvs(base: net[0], size: net[1]) {
            let g = ConvGeometry(batch: net[2], inChannels: cin, height: size, width: size, outChannels: cout,
                                 kernelHeight: 3, kernelWidth: 3, padTop: 1, padBottom: 1, padLeft: 1, padRight: 1)
            let w = randomTensor([cout, cin, 3, 3], seed: 2), y = randomTensor([net[2], cout, size, size], seed: 3)
            let dx = Tensor(uninitializedShape: [net[2], cin, size, size])
            var best = [Double.infinity, Double.infinity]
            for rep in 0..<8 {
                for path in 0..<2 {
                    ConvolutionKernels.backwardDataAsForward = path == 1
                    let t = wallSeconds { ConvolutionKernels.backwardData(g, outputGradient: y.storage.pointer, weight: w.storage.pointer,
                                                                           inputGradient: dx.storage.pointer) }
                    if rep > 0 { best[path] = min(best[path], t) }
                }
            }
            totals[0] += best[0]; totals[1] += best[1]
            print(String(format: "BWD %@ %d->%d @%d x%d: col2im %.2f ms, flipped forward %.2f ms (%.2fx)", name, cin, cout, size, net[2],
                         best[0] * 1e3, best[1] * 1e3, best[0] / best[1]))
        }
        print(String(format: "BWD total: col2im %.1f ms, flipped forward %.1f ms", totals[0] * 1e3, totals[1] * 1e3))
    }

    func testColumnStride() throws {
        guard ProcessInfo.processInfo.environment["UNET_CONV_TUNING"] == "1" else { throw XCTSkip("tuning only") }
        let net = (ProcessInfo.processInfo.environment["UNET_CONV_TUNING_NET"] ?? "16,256,4").split(separator: ",").compactMap { Int($0) }
        defer { ConvolutionKernels.padColumns = true }
        var totals = [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
        for (name, cin, cout, size) in Self.unetConvs(base: net[0], size: net[1]) {
            let g = ConvGeometry(batch: net[2], inChannels: cin, height: size, width: size, outChannels: cout,
                                 kernelHeight: 3, kernelWidth: 3, padTop: 1, padBottom: 1, padLeft: 1, padRight: 1)
            let x = randomTensor([net[2], cin, size, size], seed: 1)
            let w = randomTensor([cout, cin, 3, 3], seed: 2), y = randomTensor([net[2], cout, size, size], seed: 3)
            let dw = Tensor(uninitializedShape: w.shape)
            var best = [[Double.infinity, Double.infinity], [Double.infinity, Double.infinity], [Double.infinity, Double.infinity]]
            for rep in 0..<8 {
                for pad in 0..<2 {
                    ConvolutionKernels.padColumns = pad == 1
                    let f = wallSeconds { ConvolutionKernels.forward(g, input: x.storage.pointer, weight: w.storage.pointer, bias: nil, output: y.storage.pointer) }
                    let d = wallSeconds { ConvolutionKernels.backwardData(g, outputGradient: y.storage.pointer, weight: w.storage.pointer, inputGradient: x.storage.pointer) }
                    let b = wallSeconds { ConvolutionKernels.backwardWeight(g, input: x.storage.pointer, outputGradient: y.storage.pointer, weightGradient: dw.storage.pointer, biasGradient: nil) }
                    if rep > 0 { for (o, t) in [f, d, b].enumerated() { best[o][pad] = min(best[o][pad], t) } }
                }
            }
            for o in 0..<3 { for p in 0..<2 { totals[o][p] += best[o][p] } }
            print(String(format: "STRIDE %@ %d->%d @%d: fwd %.2f/%.2f  data %.2f/%.2f  weight %.2f/%.2f ms (plain/padded)", name, cin, cout, size,
                         best[0][0] * 1e3, best[0][1] * 1e3, best[1][0] * 1e3, best[1][1] * 1e3, best[2][0] * 1e3, best[2][1] * 1e3))
        }
        print(String(format: "STRIDE total: fwd %.1f/%.1f data %.1f/%.1f weight %.1f/%.1f ms", totals[0][0] * 1e3, totals[0][1] * 1e3,
                     totals[1][0] * 1e3, totals[1][1] * 1e3, totals[2][0] * 1e3, totals[2][1] * 1e3))
    }

    /// A/B/C of the blocking and weight-gradient forms on U-Net shapes (interleaved, least of 7):
    /// (0) cache-sized blocks, dW = dY . col^T; (1) blocks within OpenBLAS's small-matrix limit where
    /// the GEMMs are thin; (2) as 1, with dW^T = col . dY^T where the policy picks it (the default).
    /// UNET_CONV_TUNING=1 UNET_CONV_TUNING_NET=16,256,4 swift test -c release --filter testSmallGemmBlocks
    func testSmallGemmBlocks() throws {
        guard ProcessInfo.processInfo.environment["UNET_CONV_TUNING"] == "1" else { throw XCTSkip("tuning only") }
        defer { ConvolutionKernels.smallGemmBlocks = true; ConvolutionKernels.weightGradientTransposed = nil }
        compareVariants("SMALL", legend: "cache blocks / small blocks / small + dW^T", count: 3) { v in
            ConvolutionKernels.smallGemmBlocks = v > 0
            ConvolutionKernels.weightGradientTransposed = v == 2 ? nil : false
        }
    }

    /// A/B of im2col for "same" stride-1 convolutions: one copy per output row and tap, or one per tap.
    /// UNET_CONV_TUNING=1 UNET_CONV_TUNING_NET=16,256,4 swift test -c release --filter testIm2ColCopy
    func testIm2ColCopy() throws {
        guard ProcessInfo.processInfo.environment["UNET_CONV_TUNING"] == "1" else { throw XCTSkip("tuning only") }
        defer { Im2Col.rowPreserving = true }
        compareVariants("IM2COL", legend: "per row / per tap", count: 2) { v in Im2Col.rowPreserving = v == 1 }
    }

    /// A/B/C of tap GEMMs: (0) im2col everywhere; (1) tap GEMMs for stride-1 convolutions,
    /// backward-data by the default policy; (2) as 1, backward-data always as the flipped forward.
    /// UNET_CONV_TUNING=1 UNET_CONV_TUNING_NET=16,256,4 swift test -c release --filter testTapGemm
    func testTapGemm() throws {
        guard ProcessInfo.processInfo.environment["UNET_CONV_TUNING"] == "1" else { throw XCTSkip("tuning only") }
        let savedTarget = TapConvolution.targetPixels
        if let t = ProcessInfo.processInfo.environment["UNET_TAP_PIXELS"].flatMap({ Int($0) }) { TapConvolution.targetPixels = t }
        defer { TapConvolution.enabled = true; ConvolutionKernels.backwardDataAsForward = nil; TapConvolution.targetPixels = savedTarget }
        compareVariants("TAP", legend: "im2col / tap / tap + flipped data", count: 3) { v in
            TapConvolution.enabled = v > 0
            ConvolutionKernels.backwardDataAsForward = v == 2 ? true : nil
        }
    }

    /// The tap GEMMs' band width: as wide as OpenBLAS's small-matrix limit allows (the default), or a
    /// fixed 1024 / 2048 / 4096 padded pixels (`TapConvolution.targetPixels`).
    /// UNET_CONV_TUNING=1 UNET_CONV_TUNING_NET=16,512,1 swift test -c release --filter testTapTarget
    func testTapTarget() throws {
        guard ProcessInfo.processInfo.environment["UNET_CONV_TUNING"] == "1" else { throw XCTSkip("tuning only") }
        let saved = TapConvolution.targetPixels
        defer { TapConvolution.targetPixels = saved; TapConvolution.smallMatrixBands = true }
        let targets = [0, 1024, 2048, 4096]
        compareVariants("TARGET", legend: "small-matrix limit / 1024 / 2048 / 4096", count: targets.count) { v in
            TapConvolution.smallMatrixBands = v == 0
            TapConvolution.targetPixels = v == 0 ? saved : targets[v]
        }
    }

    /// A/B of the stride-2 im2col gather (scalar / 8 lanes) on the k2 s2 convolutions behind the
    /// U-Net's up-convolutions (their backward-data and weight gradient), interleaved, least of 7.
    /// UNET_CONV_TUNING=1 UNET_CONV_TUNING_NET=16,256,4 swift test -c release --filter testStrideTwoGather
    func testStrideTwoGather() throws {
        guard ProcessInfo.processInfo.environment["UNET_CONV_TUNING"] == "1" else { throw XCTSkip("tuning only") }
        let net = (ProcessInfo.processInfo.environment["UNET_CONV_TUNING_NET"] ?? "16,256,4").split(separator: ",").compactMap { Int($0) }
        defer { Im2Col.vectorGather = true }
        var totals = [[0.0, 0.0], [0.0, 0.0]]
        for level in 0..<4 {
            // up(level+1): convT 2^(level+1) f -> 2^(level+1) f channels onto (size / 2^level)^2.
            let c = net[0] << (level + 1), size = net[1] >> level
            let g = ConvGeometry(batch: net[2], inChannels: c, height: size, width: size, outChannels: c,
                                 kernelHeight: 2, kernelWidth: 2, stride: 2)
            let x = randomTensor([net[2], c, size, size], seed: 1), w = randomTensor([c, c, 2, 2], seed: 2)
            let y = randomTensor([net[2], c, size / 2, size / 2], seed: 3), dw = Tensor(uninitializedShape: w.shape)
            var best = [[Double.infinity, Double.infinity], [Double.infinity, Double.infinity]]
            for rep in 0..<8 {
                for v in 0..<2 {
                    Im2Col.vectorGather = v == 1
                    let f = wallSeconds { ConvolutionKernels.forward(g, input: x.storage.pointer, weight: w.storage.pointer, bias: nil, output: y.storage.pointer) }
                    let b = wallSeconds { ConvolutionKernels.backwardWeight(g, input: x.storage.pointer, outputGradient: y.storage.pointer, weightGradient: dw.storage.pointer, biasGradient: nil) }
                    if rep > 0 { best[0][v] = min(best[0][v], f); best[1][v] = min(best[1][v], b) }
                }
            }
            for o in 0..<2 { for v in 0..<2 { totals[o][v] += best[o][v] } }
            print(String(format: "GATHER up%d %d ch @%d: conv forward %.2f/%.2f  weight %.2f/%.2f ms (scalar/vector)", level + 1, c, size,
                         best[0][0] * 1e3, best[0][1] * 1e3, best[1][0] * 1e3, best[1][1] * 1e3))
        }
        print(String(format: "GATHER total: forward %.1f/%.1f  weight %.1f/%.1f ms", totals[0][0] * 1e3, totals[0][1] * 1e3, totals[1][0] * 1e3, totals[1][1] * 1e3))
    }

    /// Times forward, backward-data and backward-weight of every 3x3 convolution of the U-Net given
    /// by UNET_CONV_TUNING_NET (base,size,batch; default 16,256,4) under `count` variants set by
    /// `set`, interleaved, least of 7 runs each, and prints one line per layer and the totals.
    func compareVariants(_ label: String, legend: String, count variants: Int, set: (Int) -> Void) {
        let net = (ProcessInfo.processInfo.environment["UNET_CONV_TUNING_NET"] ?? "16,256,4").split(separator: ",").compactMap { Int($0) }
        var totals = Array(repeating: Array(repeating: 0.0, count: variants), count: 3)
        // UNET_CONV_TUNING_LAYERS=enc1a,dec1a: only those layers.
        let only = ProcessInfo.processInfo.environment["UNET_CONV_TUNING_LAYERS"].map { $0.split(separator: ",").map(String.init) }
        for (name, cin, cout, size) in Self.unetConvs(base: net[0], size: net[1]) where only?.contains(name) ?? true {
            let g = ConvGeometry(batch: net[2], inChannels: cin, height: size, width: size, outChannels: cout,
                                 kernelHeight: 3, kernelWidth: 3, padTop: 1, padBottom: 1, padLeft: 1, padRight: 1)
            let x = randomTensor([net[2], cin, size, size], seed: 1)
            let w = randomTensor([cout, cin, 3, 3], seed: 2), y = randomTensor([net[2], cout, size, size], seed: 3)
            let dw = Tensor(uninitializedShape: w.shape)
            var best = Array(repeating: Array(repeating: Double.infinity, count: variants), count: 3)
            for rep in 0..<8 {
                for v in 0..<variants {
                    set(v)
                    let f = wallSeconds { ConvolutionKernels.forward(g, input: x.storage.pointer, weight: w.storage.pointer, bias: nil, output: y.storage.pointer) }
                    let d = wallSeconds { ConvolutionKernels.backwardData(g, outputGradient: y.storage.pointer, weight: w.storage.pointer, inputGradient: x.storage.pointer) }
                    let b = wallSeconds { ConvolutionKernels.backwardWeight(g, input: x.storage.pointer, outputGradient: y.storage.pointer, weightGradient: dw.storage.pointer, biasGradient: nil) }
                    if rep > 0 { for (o, t) in [f, d, b].enumerated() { best[o][v] = min(best[o][v], t) } }
                }
            }
            for o in 0..<3 { for v in 0..<variants { totals[o][v] += best[o][v] } }
            func row(_ o: Int) -> String { best[o].map { String(format: "%.2f", $0 * 1e3) }.joined(separator: "/") }
            print("\(label) \(name) \(cin)->\(cout) @\(size): fwd \(row(0))  data \(row(1))  weight \(row(2)) ms")
        }
        func total(_ o: Int) -> String { totals[o].map { String(format: "%.1f", $0 * 1e3) }.joined(separator: "/") }
        print("\(label) total: fwd \(total(0))  data \(total(1))  weight \(total(2)) ms (\(legend))")
    }

    func testScheduleSweep() throws {
        guard ProcessInfo.processInfo.environment["UNET_CONV_TUNING"] == "1" else {
            throw XCTSkip("set UNET_CONV_TUNING=1 to run the schedule sweep")
        }
        var shapes: [(cin: Int, cout: Int, size: Int, k: Int, s: Int)] = [(64, 64, 512, 3, 1), (128, 128, 256, 3, 1), (512, 512, 64, 3, 1), (128, 128, 512, 2, 2)]
        if let only = ProcessInfo.processInfo.environment["UNET_CONV_TUNING_SHAPE"] {
            // An index into the list above, or "cin,cout,size,k,s".
            let parts = only.split(separator: ",").compactMap { Int($0) }
            if parts.count == 5 { shapes = [(parts[0], parts[1], parts[2], parts[3], parts[4])] } else if let i = parts.first { shapes = [shapes[i]] }
        }
        // UNET_CONV_TUNING_CPU=1: one thread, process CPU time (robust when other jobs share the cores).
        let cpuMode = ProcessInfo.processInfo.environment["UNET_CONV_TUNING_CPU"] == "1"
        let savedThreads = Threads.count
        if cpuMode { Threads.count = 1 }
        defer { Threads.count = savedThreads }
        let blockSizes = (ProcessInfo.processInfo.environment["UNET_CONV_TUNING_BLOCKS"] ?? "1,2,4,8,16").split(separator: ",").compactMap { Int($0) }
        let savedBlock = ConvolutionWorkspace.preferredBlockBytes
        defer { ConvolutionWorkspace.preferredBlockBytes = savedBlock; ConvolutionKernels.parallelism = .automatic }
        for shape in shapes {
            let pad = shape.k == 3 ? 1 : 0
            let g = ConvGeometry(batch: 1, inChannels: shape.cin, height: shape.size, width: shape.size, outChannels: shape.cout,
                                 kernelHeight: shape.k, kernelWidth: shape.k, stride: shape.s, padTop: pad, padBottom: pad, padLeft: pad, padRight: pad)
            let x = randomTensor([1, shape.cin, shape.size, shape.size], seed: 1)
            let w = randomTensor([shape.cout, shape.cin, shape.k, shape.k], seed: 2)
            let y = randomTensor([1, shape.cout, g.outHeight, g.outWidth], seed: 3)
            let dw = Tensor(uninitializedShape: w.shape)
            for lanes in cpuMode ? [true] : [true, false] {
                for blockMB in blockSizes {
                    ConvolutionKernels.parallelism = lanes ? .lanes : .splitGemm
                    ConvolutionWorkspace.preferredBlockBytes = blockMB << 20
                    func time(_ body: () -> Void) -> Double { cpuMode ? cpuTime(body) : quietTime(body) }
                    let f = time { ConvolutionKernels.forward(g, input: x.storage.pointer, weight: w.storage.pointer, bias: nil, output: y.storage.pointer) }
                    let d = time { ConvolutionKernels.backwardData(g, outputGradient: y.storage.pointer, weight: w.storage.pointer, inputGradient: x.storage.pointer) }
                    let b = time { ConvolutionKernels.backwardWeight(g, input: x.storage.pointer, outputGradient: y.storage.pointer, weightGradient: dw.storage.pointer, biasGradient: nil) }
                    let gf = g.flops / 1e9
                    print(String(format: "TUNE %d->%d k%d s%d @%d lanes %@ block %2d MB: fwd %6.1f ms (%5.1f GF/s) bwd-data %6.1f ms (%5.1f) bwd-weight %6.1f ms (%5.1f)",
                                 shape.cin, shape.cout, shape.k, shape.s, shape.size, lanes ? "yes" : "no ", blockMB,
                                 f * 1e3, gf / f, d * 1e3, gf / d, b * 1e3, gf / b))
                }
            }
        }
    }
}

/// CPU ticks used by the whole machine (non-idle) and by this process, from /proc.
func cpuTicks() -> (machine: Int, mine: Int) {
    let stat = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8)) ?? ""
    let fields = stat.split(separator: "\n").first?.split(separator: " ").dropFirst().compactMap { Int($0) } ?? []
    let busy = fields.count >= 5 ? fields.reduce(0, +) - fields[3] - fields[4] : 0
    let me = (try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8)) ?? ""
    let after = me.split(separator: ")").last?.split(separator: " ") ?? []
    let mine = after.count > 13 ? (Int(after[11]) ?? 0) + (Int(after[12]) ?? 0) : 0
    return (busy, mine)
}

/// Least wall time of `body` over runs in which other processes used under 10% of the cores
/// (up to 20 attempts; if none was quiet, the least time of all, which then overstates).
func quietTime(_ body: () -> Void) -> Double {
    body()
    var quiet: [Double] = [], all: [Double] = []
    for _ in 0..<20 {
        let t0 = cpuTicks()
        let s = DispatchTime.now().uptimeNanoseconds
        body()
        let wall = Double(DispatchTime.now().uptimeNanoseconds - s) * 1e-9
        let t1 = cpuTicks()
        let others = Double((t1.machine - t0.machine) - (t1.mine - t0.mine)) / 100.0
        all.append(wall)
        if others < 0.1 * wall * Double(System.coreCount) { quiet.append(wall) }
        if quiet.count >= 3 { break }
    }
    return (quiet.isEmpty ? all : quiet).min()!
}

/// Least process CPU time of `body` over 5 runs after a warm-up.
func cpuTime(_ body: () -> Void) -> Double {
    func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
    body()
    var best = Double.infinity
    for _ in 0..<5 {
        let s = now()
        body()
        best = min(best, now() - s)
    }
    return best
}

/// Wall seconds of one run of `body`.
func wallSeconds(_ body: () -> Void) -> Double {
    let s = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - s) * 1e-9
}
