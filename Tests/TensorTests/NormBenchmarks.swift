import Foundation
@testable import Tensor
import XCTest

/// Timing harness for pooling, batch norm and activations on the ANCHORS.md shape (64 x 512^2).
/// Skipped unless UNET_BENCH=1:
///
///     UNET_BENCH=1 swift test -c release --filter NormBenchmarks
///
/// Prints one row per op: median and best of the repeats, in milliseconds. `UNET_BENCH_FILTER=text`
/// keeps the rows whose name contains text; `UNET_BENCH_REPEATS=n` sets the repeats (default 7).
final class NormBenchmarks: XCTestCase {
    func time(_ name: String, _ body: () -> Void) { benchmarkTime(name, body) }

    func testPoolingBatchNormActivations() throws {
        guard ProcessInfo.processInfo.environment["UNET_BENCH"] == "1" else {
            throw XCTSkip("timing harness: run with UNET_BENCH=1")
        }
        let shape = [1, 64, 512, 512]
        print("BENCH shape \(shape), Threads.count \(Threads.count)")
        var rng = SeededGenerator(seed: 1)
        let x = Tensor.randomUniform(shape, lowerBound: -2, upperBound: 2, generator: &rng)
        let g = Tensor.randomUniform(shape, lowerBound: -1, upperBound: 1, generator: &rng)
        let pooledG = Tensor.randomUniform([1, 64, 256, 256], lowerBound: -1, upperBound: 1, generator: &rng)
        let scale = Tensor.ones([64]), offset = Tensor.zeros([64])
        let mean = Tensor.zeros([64]), variance = Tensor.ones([64])

        for (label, activation) in [("BN", Activation.identity), ("BN+ReLU", .relu), ("BN+ELU", .elu(alpha: 1))] {
            time("\(label) train forward") {
                _ = batchNormTraining(x, scale: scale, offset: offset, activation: activation)
            }
            time("\(label) train forward+backward") {
                let leaves = [x, scale, offset].map { $0.requiringGradient() }
                batchNormTraining(leaves[0], scale: leaves[1], offset: leaves[2], activation: activation)
                    .output.backward(seed: g)
            }
        }
        time("BN+ELU eval forward") {
            _ = batchNormInference(x, scale: scale, offset: offset, mean: mean, variance: variance,
                                   activation: .elu(alpha: 1))
        }
        time("BN then Tensor.elu (unfused) train fwd+bwd") {
            let leaves = [x, scale, offset].map { $0.requiringGradient() }
            batchNormTraining(leaves[0], scale: leaves[1], offset: leaves[2]).output.elu().backward(seed: g)
        }
        time("ELU forward (Tensor.elu)") { _ = x.elu() }
        time("ELU forward+backward (Tensor.elu)") { x.requiringGradient().elu().backward(seed: g) }
        time("maxPool2d 2x2 forward (no grad)") { _ = withoutGradients { maxPool2d(x) } }
        time("maxPool2d 2x2 forward (recording)") { _ = maxPool2d(x.requiringGradient()) }
        time("maxPool2d 2x2 forward+backward") { maxPool2d(x.requiringGradient()).backward(seed: pooledG) }
        time("dropout p=0.5 forward") {
            var r = SeededGenerator(seed: 3)
            _ = dropout(x, probability: 0.5, generator: &r)
        }
        time("dropout p=0.5 forward+backward") {
            var r = SeededGenerator(seed: 3)
            dropout(x.requiringGradient(), probability: 0.5, generator: &r).backward(seed: g)
        }
        let reused = Tensor(uninitializedShape: shape)
        time("memcpy into an existing tensor (bandwidth reference)") {
            reused.withUnsafeBufferPointer { dst in
                x.withUnsafeBufferPointer {
                    UnsafeMutablePointer(mutating: dst.baseAddress!).update(from: $0.baseAddress!, count: $0.count)
                }
            }
        }
        time("memcpy into a new tensor (bandwidth + page faults)") {
            var y = Tensor(uninitializedShape: shape)
            y.withUnsafeMutableBufferPointer { dst in
                x.withUnsafeBufferPointer { dst.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
            }
        }
    }
}

/// Kernel-only timings into preallocated buffers (no allocation, no page faults, no tape).
final class NormKernelBenchmarks: XCTestCase {
    func testKernels() throws {
        guard ProcessInfo.processInfo.environment["UNET_BENCH"] == "1" else {
            throw XCTSkip("timing harness: run with UNET_BENCH=1")
        }
        let (n, c, h, w) = (1, 64, 512, 512)
        var rng = SeededGenerator(seed: 1)
        let x = Tensor.randomUniform([n, c, h, w], lowerBound: -2, upperBound: 2, generator: &rng)
        var full = Tensor(repeating: 0, shape: [n, c, h, w])
        var pooled = Tensor(repeating: 0, shape: [n, c, h / 2, w / 2])
        var argmax = [UInt8](repeating: 0, count: pooled.count)
        x.withUnsafeBufferPointer { xp in
            full.withUnsafeMutableBufferPointer { fp in
                pooled.withUnsafeMutableBufferPointer { pp in
                    argmax.withUnsafeMutableBufferPointer { ap in
                        let xp = xp.baseAddress!, fp = fp.baseAddress!, pp = pp.baseAddress!, ap = ap.baseAddress!
                        benchmarkTime("kernel maxPool 2x2 forward with argmax") {
                            PoolingKernels.maxPoolForward(xp, pp, ap, planes: n * c, height: h, width: w, kernel: 2,
                                                          stride: 2, outputHeight: h / 2, outputWidth: w / 2)
                        }
                        benchmarkTime("kernel maxPool 2x2 forward without argmax") {
                            PoolingKernels.maxPoolForward(xp, pp, nil, planes: n * c, height: h, width: w, kernel: 2,
                                                          stride: 2, outputHeight: h / 2, outputWidth: w / 2)
                        }
                        benchmarkTime("kernel maxPool 3x3 stride 2 forward with argmax") {
                            PoolingKernels.maxPoolForward(xp, pp, ap, planes: n * c, height: h, width: w, kernel: 3,
                                                          stride: 2, outputHeight: (h - 3) / 2 + 1, outputWidth: (w - 3) / 2 + 1)
                        }
                        benchmarkTime("kernel maxPool 3x3 stride 2 backward") {
                            PoolingKernels.maxPoolBackward(pp, ap, fp, planes: n * c, height: h, width: w, kernel: 3,
                                                           stride: 2, outputHeight: (h - 3) / 2 + 1, outputWidth: (w - 3) / 2 + 1)
                        }
                        benchmarkTime("kernel memcpy 64 MiB") { fp.update(from: xp, count: n * c * h * w) }
                        benchmarkTime("kernel maxPool 2x2 backward") {
                            PoolingKernels.maxPoolBackward(pp, ap, fp, planes: n * c, height: h, width: w, kernel: 2,
                                                           stride: 2, outputHeight: h / 2, outputWidth: w / 2)
                        }
                        let ones = [Float](repeating: 1, count: c), zeros = [Float](repeating: 0, count: c)
                        benchmarkTime("kernel BN statistics") {
                            _ = BatchNormKernels.statistics(xp, n: n, c: c, planeSize: h * w)
                        }
                        for activation in [Activation.identity, .elu(alpha: 1)] {
                            benchmarkTime("kernel BN normalize \(activation)") {
                                BatchNormKernels.normalize(xp, fp, n: n, c: c, planeSize: h * w, a: ones, b: zeros,
                                                           activation: activation)
                            }
                            benchmarkTime("kernel BN backward sums \(activation)") {
                                _ = BatchNormKernels.backwardSums(xp, fp, xp, n: n, c: c, planeSize: h * w, a: ones,
                                                                  b: zeros, mean: zeros, activation: activation)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Runs `body` once to warm up, then `repeats` times; prints the median and the best wall time in
/// ms, and the median CPU time (user + system, all threads) in ms. On a shared machine the CPU
/// time is the steadier figure: it does not count time spent waiting for a core.
func benchmarkTime(_ name: String, repeats: Int = 7, _ body: () -> Void) {
    if let filter = ProcessInfo.processInfo.environment["UNET_BENCH_FILTER"], !name.contains(filter) { return }
    let repeats = Int(ProcessInfo.processInfo.environment["UNET_BENCH_REPEATS"] ?? "") ?? repeats
    body()  // warm-up: page in, wake threads
    func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
    var wall: [Double] = [], cpu: [Double] = []
    for _ in 0..<repeats {
        let c0 = cpuSeconds(), start = DispatchTime.now().uptimeNanoseconds
        body()
        wall.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        cpu.append((cpuSeconds() - c0) * 1e3)
    }
    wall.sort(); cpu.sort()
    print(String(format: "BENCH %-44@ median %7.1f ms   best %7.1f ms   cpu %7.1f ms", name as NSString,
                 wall[wall.count / 2], wall[0], cpu[cpu.count / 2]))
}
