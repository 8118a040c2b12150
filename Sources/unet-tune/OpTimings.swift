import ArgumentParser
import Foundation
import Tensor

struct OpTimings: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "Time conv2d 3x3 (forward, forward + backward) and convTranspose2d k2 s2 (forward) through the public ops.",
        discussion: """
            The shapes of docs/PERFORMANCE.md's comparison with PyTorch (tools/torch_conv_ops.py): conv2d \
            C->C 3x3 "same" on 1 x C x S^2 and convTranspose2d 2C->2C k2 s2 on a (S/2)^2 input, with C = --channels \
            (64) and S = --size (512). Each time is the least wall time of runs in which other processes used under \
            10 % of the cores (or, with --cpu-time, the least process CPU time on one thread).
            """)

    @Option(help: ArgumentHelp("Channels of the 3x3 convolution; the transposed one has twice as many (default: 64).", valueName: "n"))
    var channels = 64
    @Option(help: ArgumentHelp("Input side of the 3x3 convolution, even; the transposed one's input is half (default: 512).", valueName: "px"))
    var size = 512
    @Flag(name: .customLong("cpu-time"), help: "One thread and process CPU time (steadier when other jobs share the cores).")
    var cpuMode = false
    @OptionGroup var threadCount: ThreadCount

    func validate() throws {
        if channels < 1 { throw ValidationError("--channels \(channels): expected at least 1") }
        if size < 2 || size % 2 != 0 { throw ValidationError("--size \(size): expected an even side of at least 2") }
    }

    func run() {
        threadCount.apply()
        if cpuMode { Threads.count = 1 }
        let measure: (() -> Void) -> Double = cpuMode ? cpuTime : quietTime
        let c = channels
        var rng = SeededGenerator(seed: 1)
        let x = Tensor.randomUniform([1, c, size, size], lowerBound: -1, upperBound: 1, generator: &rng)
        let w = Tensor.randomUniform([c, c, 3, 3], lowerBound: -1, upperBound: 1, generator: &rng)
        let seed = Tensor.randomUniform([1, c, size, size], lowerBound: -1, upperBound: 1, generator: &rng)
        let forward = measure { _ = withoutGradients { conv2d(x, weight: w, padding: .same) } }
        let forwardBackward = measure {
            let xl = x.requiringGradient(), wl = w.requiringGradient()
            conv2d(xl, weight: wl, padding: .same).backward(seed: seed)
            precondition(wl.gradient != nil && xl.gradient != nil)
        }

        // The same forward without the op around it, and what the op adds: a new output tensor.
        let g = ConvGeometry(batch: 1, inChannels: c, height: size, width: size, outChannels: c, kernelHeight: 3, kernelWidth: 3,
                             padTop: 1, padBottom: 1, padLeft: 1, padRight: 1)
        let xs = randomStorage(x.count, seed: 1), ws = randomStorage(w.count, seed: 2), ys = randomStorage(x.count, seed: 3)
        let kernelOnly = measure { ConvolutionKernels.forward(g, input: xs.pointer, weight: ws.pointer, bias: nil, output: ys.pointer) }
        let allocateAndFill = measure {
            let t = TensorStorage(uninitializedCount: x.count)
            t.pointer.update(repeating: 0, count: t.count)
        }
        let how = cpuMode ? "CPU time" : "wall time"
        print(String(format: "OPS conv2d %d->%d 3x3 @%d^2 batch 1, %d thread(s) (%@): forward %.1f ms, forward+backward %.1f ms",
                     c, c, size, Threads.count, how, forward * 1e3, forwardBackward * 1e3))
        print(String(format: "OPS kernel only %.1f ms, allocate+fill the output (%d MiB) %.1f ms",
                     kernelOnly * 1e3, (x.count * 4) >> 20, allocateAndFill * 1e3))

        let t = 2 * c, half = size / 2
        let xt = Tensor.randomUniform([1, t, half, half], lowerBound: -1, upperBound: 1, generator: &rng)
        let wt = Tensor.randomUniform([t, t, 2, 2], lowerBound: -1, upperBound: 1, generator: &rng)
        let transposed = measure { _ = withoutGradients { convTranspose2d(xt, weight: wt, stride: 2) } }
        let flops = 2.0 * Double(t * t * 4) * Double(half * half)
        print(String(format: "OPS convTranspose2d k2 s2 %d->%d @%d^2 in, %d thread(s) (%@): forward %.1f ms (%.1f GFLOP/s)",
                     t, t, half, Threads.count, how, transposed * 1e3, flops / transposed / 1e9))
    }
}
