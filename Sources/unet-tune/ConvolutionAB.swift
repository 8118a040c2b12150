import ArgumentParser
import Benchmarking
import Tensor

/// A U-Net shape given as `base,size,batch`.
struct NetShape: ExpressibleByArgument, CustomStringConvertible {
    var baseFilters: Int, size: Int, batch: Int

    init?(argument: String) {
        let parts = argument.split(separator: ",").compactMap { Int($0) }
        guard parts.count == 3, parts[0] >= 1, parts[1] >= 16, parts[1] % 16 == 0, parts[2] >= 1 else { return nil }
        (baseFilters, size, batch) = (parts[0], parts[1], parts[2])
    }

    var description: String { "\(baseFilters),\(size),\(batch)" }
}

/// The options of the A/B commands.
struct ABOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The depth-4 U-Net whose 3x3 convolutions are timed: base filters, input side (a multiple of 16), batch (default: 16,256,4).",
                               valueName: "base,size,batch"))
    var net = NetShape(argument: "16,256,4")!

    @Option(help: ArgumentHelp("Only these layers, e.g. enc1b,dec1a (a shape two layers share, such as enc1b/dec1b, matches either name).",
                               valueName: "names"))
    var layers: String?

    @Option(help: ArgumentHelp("Timed rounds after one warm-up round; each figure is the least (default: 7).", valueName: "n"))
    var repetitions = 7

    @Flag(name: .customLong("no-tap-gemms"), help: "Run every variant through im2col (tap GEMMs off).")
    var noTapGemms = false

    @Flag(help: "Report the median of the rounds instead of the least (for a busy machine).")
    var median = false

    @OptionGroup var threadCount: ThreadCount

    func validate() throws {
        if repetitions < 1 { throw ValidationError("--repetitions \(repetitions): expected at least 1") }
    }

    /// The selected 3x3 convolutions of the net.
    var selectedLayers: [ConvolutionReport.Layer] {
        let names = layers.map { $0.split(separator: ",").map(String.init) }
        return ConvolutionReport.layers(baseFilters: net.baseFilters, size: net.size, batch: net.batch).filter { layer in
            layer.kernel == 3 && !layer.transposed
                && (names.map { wanted in layer.name.split(separator: "/").contains { wanted.contains(String($0)) } } ?? true)
        }
    }

    /// Times `ops` of every selected layer under each of `variants` (interleaved, least of
    /// `repetitions` rounds) and prints one line per layer, then the totals.
    func compare(_ label: String, ops: [ConvolutionReport.Op], _ variants: [(name: String, policy: ConvolutionPolicy)]) {
        threadCount.apply()
        let legend = variants.map { $0.name }.joined(separator: " / ")
        print("\(label): \(legend); U-Net \(net), \(Threads.count) thread(s), \(median ? "median" : "least") of \(repetitions), ms")
        var totals = [[Double]](repeating: [Double](repeating: 0, count: variants.count), count: ops.count)
        for layer in selectedLayers {
            let g = layer.geometry
            let policies = variants.map { variant -> ConvolutionPolicy in
                var p = variant.policy
                if noTapGemms { p.tapGemms = false }
                return p
            }
            let x = randomStorage(g.batch * g.inChannels * g.inPixels, seed: 1)
            let w = randomStorage(g.outChannels * g.columnRows, seed: 2)
            let y = randomStorage(g.batch * g.outChannels * g.outPixels, seed: 3)
            let dw = randomStorage(g.outChannels * g.columnRows, seed: 4)
            var line = "\(label) \(layer.name) \(layer.cin)->\(layer.cout) @\(layer.h):"
            for (o, op) in ops.enumerated() {
                let bodies = policies.map { policy -> () -> Void in
                    switch op {
                    case .forward:
                        return { ConvolutionKernels.forward(g, input: x.pointer, weight: w.pointer, bias: nil, output: y.pointer, policy: policy) }
                    case .backwardData:
                        return { ConvolutionKernels.backwardData(g, outputGradient: y.pointer, weight: w.pointer, inputGradient: x.pointer,
                                                                 policy: policy) }
                    case .backwardWeight:
                        return { ConvolutionKernels.backwardWeight(g, input: x.pointer, outputGradient: y.pointer, weightGradient: dw.pointer,
                                                                   biasGradient: nil, policy: policy) }
                    }
                }
                let best = median ? medianInterleaved(rounds: repetitions, bodies) : leastInterleaved(rounds: repetitions, bodies)
                for v in best.indices { totals[o][v] += best[v] }
                line += "  \(op.rawValue) " + best.map(milliseconds).joined(separator: "/")
            }
            print(line)
        }
        print("\(label) total:" + ops.indices.map { o in "  \(ops[o].rawValue) " + totals[o].map(milliseconds).joined(separator: "/") }.joined()
              + " (\(legend))")
    }
}

struct BackwardDataAB: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backward-data",
        abstract: "A/B of backward-data: column matrix + col2im, or the forward convolution of the flipped kernel.",
        discussion: "Example: unet-tune backward-data --net 64,512,1")
    @OptionGroup var options: ABOptions

    func run() {
        options.compare("BWD", ops: [.backwardData], [("col2im", ConvolutionPolicy(backwardData: .columns)),
                                                      ("flipped forward", ConvolutionPolicy(backwardData: .flippedForward))])
    }
}

struct WeightGradientAB: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weight-gradient",
        abstract: "A/B of the im2col weight-gradient GEMM: dW = dY . col^T, or dW^T = col . dY^T.",
        discussion: """
            Layers that run as tap GEMMs never take either form; --no-tap-gemms sends them through im2col. \
            Example: unet-tune weight-gradient --no-tap-gemms
            """)
    @OptionGroup var options: ABOptions

    func run() {
        options.compare("WEIGHT", ops: [.backwardWeight], [("dY.col^T", ConvolutionPolicy(weightGradient: .plain)),
                                                          ("col.dY^T", ConvolutionPolicy(weightGradient: .transposed))])
    }
}

struct TapGemmAB: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tap",
        abstract: "A/B/C of tap GEMMs: im2col everywhere / tap GEMMs / tap GEMMs with backward-data always as the flipped forward.",
        discussion: "Example: unet-tune tap --net 16,256,4 --layers enc1b,dec1a")
    @OptionGroup var options: ABOptions

    func run() {
        options.compare("TAP", ops: ConvolutionReport.Op.allCases, [
            ("im2col", ConvolutionPolicy(tapGemms: false)),
            ("tap", ConvolutionPolicy()),
            ("tap + flipped data", ConvolutionPolicy(backwardData: .flippedForward)),
        ])
    }
}

struct WinogradAB: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "winograd",
        abstract: "A/B/C of Winograd: the exact paths (tap GEMMs or im2col) / F(2x2,3x3) / F(4x4,3x3), forward, backward-data and weight gradient.",
        discussion: """
            Backward-data as the schedule runs it (under F2 and F4, the flipped forward). Example (busy machine): \
            unet-tune winograd --net 64,512,1 --median --repetitions 9
            """)
    @OptionGroup var options: ABOptions

    func run() {
        options.compare("WINO", ops: ConvolutionReport.Op.allCases, [
            ("exact", ConvolutionPolicy(algorithm: .exact)),
            ("F2", ConvolutionPolicy(algorithm: .winograd(.f2))),
            ("F4", ConvolutionPolicy(algorithm: .winograd(.f4))),
        ])
    }
}
