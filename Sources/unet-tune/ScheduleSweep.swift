import ArgumentParser
import Foundation
import Tensor

/// A convolution shape given as `cin,cout,size,kernel,stride`.
struct ConvShape: ExpressibleByArgument, CustomStringConvertible {
    var cin: Int, cout: Int, size: Int, kernel: Int, stride: Int

    init(_ cin: Int, _ cout: Int, _ size: Int, _ kernel: Int, _ stride: Int) {
        (self.cin, self.cout, self.size, self.kernel, self.stride) = (cin, cout, size, kernel, stride)
    }

    init?(argument: String) {
        let p = argument.split(separator: ",").compactMap { Int($0) }
        guard p.count == 5, p.allSatisfy({ $0 >= 1 }), p[2] >= p[3] else { return nil }
        self.init(p[0], p[1], p[2], p[3], p[4])
    }

    var description: String { "\(cin)->\(cout) k\(kernel) s\(stride) @\(size)" }

    /// Batch 1, "same" padding for odd kernels, none for even ones.
    var geometry: ConvGeometry {
        let pad = (kernel - 1) / 2
        return ConvGeometry(batch: 1, inChannels: cin, height: size, width: size, outChannels: cout,
                            kernelHeight: kernel, kernelWidth: kernel, stride: stride,
                            padTop: pad, padBottom: kernel - 1 - pad, padLeft: pad, padRight: kernel - 1 - pad)
    }
}

struct ScheduleSweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Time the three kernels of a few layer shapes under each parallelism policy (automatic, lanes, split-gemm).",
        discussion: """
            Default shapes: 64->64 3x3 @512, 128->128 3x3 @256, 512->512 3x3 @64, 128->128 k2 s2 @512 (batch 1). \
            Each time is the least wall time of runs in which other processes used under 10 % of the cores; \
            --cpu-time runs one thread (so only the automatic policy) and reports process CPU time. \
            Example: unet-tune schedule --shape 64,64,512,3,1 --cpu-time
            """)

    @Option(name: .customLong("shape"), parsing: .singleValue,
            help: ArgumentHelp("A shape to time instead of the defaults (repeatable).", valueName: "cin,cout,size,k,s"))
    var shapes: [ConvShape] = []
    @Flag(name: .customLong("cpu-time"), help: "One thread and process CPU time (steadier when other jobs share the cores).")
    var cpuMode = false
    @OptionGroup var threadCount: ThreadCount

    static let defaultShapes = [ConvShape(64, 64, 512, 3, 1), ConvShape(128, 128, 256, 3, 1), ConvShape(512, 512, 64, 3, 1),
                                ConvShape(128, 128, 512, 2, 2)]

    func run() {
        threadCount.apply()
        if cpuMode { Threads.count = 1 }
        let time: (() -> Void) -> Double = cpuMode ? cpuTime : quietTime
        let parallelisms = cpuMode ? [ConvolutionPolicy.Parallelism.automatic] : ConvolutionPolicy.Parallelism.allCases
        print("SCHEDULE \(Threads.count) thread(s), \(cpuMode ? "CPU time" : "wall time"); ms (GFLOP/s)")
        for shape in shapes.isEmpty ? Self.defaultShapes : shapes {
            let g = shape.geometry
            let x = randomStorage(g.inChannels * g.inPixels, seed: 1), w = randomStorage(g.outChannels * g.columnRows, seed: 2)
            let y = randomStorage(g.outChannels * g.outPixels, seed: 3), dw = randomStorage(g.outChannels * g.columnRows, seed: 4)
            for parallelism in parallelisms {
                let policy = ConvolutionPolicy(parallelism: parallelism)
                let f = time { ConvolutionKernels.forward(g, input: x.pointer, weight: w.pointer, bias: nil, output: y.pointer, policy: policy) }
                let d = time {
                    ConvolutionKernels.backwardData(g, outputGradient: y.pointer, weight: w.pointer, inputGradient: x.pointer, policy: policy)
                }
                let b = time {
                    ConvolutionKernels.backwardWeight(g, input: x.pointer, outputGradient: y.pointer, weightGradient: dw.pointer,
                                                      biasGradient: nil, policy: policy)
                }
                let gflop = g.flops / 1e9
                print(String(format: "SCHEDULE %@ %@: forward %.1f (%.1f)  backward-data %.1f (%.1f)  backward-weight %.1f (%.1f)",
                             shape.description, parallelism.rawValue, f * 1e3, gflop / f, d * 1e3, gflop / d, b * 1e3, gflop / b))
            }
        }
    }
}
