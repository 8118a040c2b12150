import Dispatch
import Foundation
import NN
import Tensor
import UNet

/// Times one training step (forward, cross-entropy loss, backward, Adam step) or one inference
/// forward of a `UNetModel`: the workloads of the maintainers' PyTorch reference benchmark (the same
/// model, the same counting of GFLOP), so the two can be compared side by side (docs/PERFORMANCE.md).
///
/// Use from the CLI as `unet bench train|infer [--base-filters F] [--size S] [--batch B] [--threads T] [--json]`,
/// or from code:
/// ```swift
/// let result = ModelBenchmark.run(.train, options: .init(baseFilters: 16, size: 512, batch: 1))
/// print(result.summary)          // "train base 16, 1 x 512^2, 2 threads: median 1.234 s ..."
/// ```
/// The input is random noise in [0, 1) and the targets random classes, both fixed by the seed; the
/// timings are wall-clock medians of `runs` steps after `warmup` steps, with `Threads.count` threads.
public enum ModelBenchmark {
    /// What is timed.
    public enum Mode: String, Codable, Sendable, CaseIterable {
        /// One optimizer step: forward, loss, backward, Adam update (training mode: batch statistics).
        case train
        /// One forward pass in evaluation mode without the autodiff tape.
        case infer
    }

    /// The workload.
    public struct Options: Sendable, Equatable {
        /// Filters of the first level (the tutorial: 64).
        public var baseFilters: Int
        /// Input side in pixels (a multiple of 2^depth).
        public var size: Int
        /// Images per step.
        public var batch: Int
        /// Pooling levels (the tutorial: 4).
        public var depth: Int
        /// Timed steps; the median is reported.
        public var runs: Int
        /// Untimed steps first (buffers allocated, caches warm).
        public var warmup: Int
        /// Seed of the weights, input and targets.
        public var seed: UInt64

        /// Creates options; the defaults are the reference script's (base 64, 512^2, batch 1, 5 runs, 1 warm-up).
        public init(baseFilters: Int = 64, size: Int = 512, batch: Int = 1, depth: Int = 4, runs: Int = 5,
                    warmup: Int = 1, seed: UInt64 = 0) {
            self.baseFilters = baseFilters
            self.size = size
            self.batch = batch
            self.depth = depth
            self.runs = runs
            self.warmup = warmup
            self.seed = seed
        }

        /// The model of the benchmark: the tutorial's U-Net with these base filters and depth.
        public var configuration: UNetConfiguration { UNetConfiguration(baseFilters: baseFilters, depth: depth) }

        /// Throws a `ModelBenchmarkError` naming the first invalid value (the configuration's own errors
        /// are `UNetConfigurationError`s).
        public func validate() throws {
            try configuration.validate()
            guard batch >= 1 && batch <= 1024 else { throw ModelBenchmarkError(field: "batch", value: "\(batch)", expected: "1...1024") }
            guard runs >= 1 && runs <= 1000 else { throw ModelBenchmarkError(field: "runs", value: "\(runs)", expected: "1...1000") }
            guard warmup >= 0 && warmup <= 100 else { throw ModelBenchmarkError(field: "warmup", value: "\(warmup)", expected: "0...100") }
            guard size >= 1 && size <= 8192, configuration.outputSize(forInputSize: size) != nil else {
                throw ModelBenchmarkError(field: "size", value: "\(size)",
                                          expected: "a multiple of \(1 << depth) up to 8192 (e.g. \(configuration.validInputSize(atLeast: max(1, min(size, 8192)))))")
            }
        }
    }

    /// The measurement. JSON keys: `mode, base_filters, size, batch, depth, threads, runs, median_s, min_s,
    /// max_s, peak_rss_mib, gflop_per_forward, gflop_per_s, params, processes, images_per_s`, `allreduce_s`
    /// for training over several processes, and `system` when set.
    public struct Result: Codable, Sendable, Equatable {
        public var mode: Mode
        public var baseFilters: Int
        public var size: Int
        public var batch: Int
        public var depth: Int
        public var threads: Int
        public var runs: Int
        /// Median seconds per step.
        public var medianSeconds: Double
        public var minSeconds: Double
        public var maxSeconds: Double
        /// Peak resident set size of the process after the measurement, MiB.
        public var peakRSSMebibytes: Double
        /// Convolution and transposed-convolution GFLOP of one forward pass of the whole batch.
        public var gflopPerForward: Double
        /// Effective rate: forward GFLOP (x3 for a training step: forward, backward-data, backward-weight) per median second.
        public var gflopPerSecond: Double
        /// Trainable parameters.
        public var params: Int
        /// Processes the step was spread over (1 without MPI).
        public var processes: Int = 1
        /// Images per second: `batch` over the median step.
        public var imagesPerSecond: Double = 0
        /// Median seconds of the gradient all-reduce within a step (training over several processes).
        public var allReduceSeconds: Double?
        /// The machine it ran on (set by the caller; `run` leaves it nil).
        public var system: SystemReport?

        enum CodingKeys: String, CodingKey {
            case mode, baseFilters = "base_filters", size, batch, depth, threads, runs
            case medianSeconds = "median_s", minSeconds = "min_s", maxSeconds = "max_s"
            case peakRSSMebibytes = "peak_rss_mib", gflopPerForward = "gflop_per_forward"
            case gflopPerSecond = "gflop_per_s", params, system, processes
            case imagesPerSecond = "images_per_s", allReduceSeconds = "allreduce_s"
        }

        /// One line in the reference script's style.
        public var summary: String {
            String(format: "%@ base %d, %d x %d^2, %d thread%@: median %.3f s (min %.3f, max %.3f) over %d runs; "
                   + "forward %.1f GFLOP -> %.1f GFLOP/s%@; peak RSS %.0f MiB; %d params",
                   mode.rawValue, baseFilters, batch, size, threads, threads == 1 ? "" : "s", medianSeconds, minSeconds,
                   maxSeconds, runs, gflopPerForward, gflopPerSecond, mode == .train ? " @3x" : "", peakRSSMebibytes, params)
                + (processes > 1 ? String(format: "; %d processes: %.2f images/s, all-reduce %.4f s per step", processes,
                                          imagesPerSecond, allReduceSeconds ?? 0) : "")
        }

        /// Pretty-printed JSON with sorted keys.
        public var json: String { jsonString(self) }
    }

    /// Builds the model and times `mode`. The options must be valid (`Options.validate()`).
    /// `beforeMeasuredSteps` runs after the warm-up, right before the timed steps (e.g. to reset a profiler);
    /// `progress` sees each timed step's seconds.
    ///
    /// With a `collective` of K processes (under `mpirun`), every rank takes its share of the batch
    /// (`batch` stays the global batch) and a training step ends with the gradients summed over the
    /// ranks, as `Trainer` does; a step's time is the slowest rank's.
    public static func run(_ mode: Mode, options: Options, collective: Collective = SingleProcess(),
                           beforeMeasuredSteps: (() -> Void)? = nil,
                           progress: ((Int, Double) -> Void)? = nil) -> Result {
        let configuration = options.configuration
        var rng = SeededGenerator(seed: options.seed)
        let model = UNetModel(configuration: configuration, generator: &rng)
        let (k, r, b) = (collective.size, collective.rank, options.batch)
        let share = (r * b / k)..<((r + 1) * b / k)
        let fullInput = Tensor.randomUniform([options.batch, configuration.inputChannels, options.size, options.size],
                                             lowerBound: 0, upperBound: 1, generator: &rng)
        let outputSide = configuration.outputSize(forInputSize: options.size)!
        var classes = [Float](repeating: 0, count: options.batch * outputSide * outputSide)
        for i in classes.indices { classes[i] = Float(rng.next() % UInt64(configuration.classes)) }
        let fullTargets = Tensor(shape: [options.batch, outputSide, outputSide], scalars: classes)
        let input = k == 1 ? fullInput : fullInput.slice(alongAxis: 0, share)
        let targets = k == 1 ? fullTargets : fullTargets.slice(alongAxis: 0, share)

        var allReduceTimes: [Double] = []
        let step: () -> Void
        switch mode {
        case .train:
            model.train()
            let optimizer = Adam(parameters: model.namedParameters(), learningRate: 1e-4)
            let gradients = GradientSynchronizer(parameters: model.namedParameters().map(\.1), collective: collective)
            let weight = Float(share.count) / Float(b)
            step = {
                optimizer.zeroGradients()
                let logits = model(input)
                let loss = segmentationLoss(.crossEntropy, logits: logits, targets: targets, weights: nil)
                if k == 1 {
                    loss.backward()
                } else {
                    (loss * weight).backward()
                    allReduceTimes.append(wallSeconds { gradients.synchronize() })
                }
                optimizer.step()
            }
        case .infer:
            model.eval()
            step = { withoutGradients { _ = model(input) } }
        }

        for _ in 0..<options.warmup { step() }
        beforeMeasuredSteps?()
        var times: [Double] = []
        allReduceTimes.removeAll()
        for run in 0..<options.runs {
            collective.barrier()
            var seconds = wallSeconds(step)
            if k > 1 { seconds = Double(collective.allReduceMax(Int64(seconds * 1e9))) / 1e9 }
            times.append(seconds)
            progress?(run + 1, seconds)
        }
        let sorted = times.sorted()
        let median = Benchmarking.median(times)!
        let gflop = forwardGFLOP(configuration: configuration, size: options.size, batch: options.batch)
        return Result(mode: mode, baseFilters: options.baseFilters, size: options.size, batch: options.batch,
                      depth: options.depth, threads: Threads.count, runs: options.runs, medianSeconds: median,
                      minSeconds: sorted.first!, maxSeconds: sorted.last!, peakRSSMebibytes: peakResidentMebibytes(),
                      gflopPerForward: gflop, gflopPerSecond: (mode == .train ? 3 : 1) * gflop / median,
                      params: model.parameterCount, processes: k,
                      imagesPerSecond: Double(b) / median,
                      allReduceSeconds: allReduceTimes.isEmpty ? nil : Benchmarking.median(allReduceTimes))
    }

    /// GFLOP (multiply and add counted separately) of the convolutions and transposed convolutions of
    /// one forward pass of `batch` images of `size`^2, counted as the reference script counts them
    /// (479.3 for the tutorial's base 64 at 512^2, 30.0 for base 16).
    public static func forwardGFLOP(configuration c: UNetConfiguration, size: Int, batch: Int) -> Double {
        var flops = 0.0
        var side = size
        func conv3x3(_ cin: Int, _ cout: Int) {
            if c.padding == .valid { side -= 2 }
            flops += 2 * Double(batch * cout * side * side) * Double(cin * 9)
        }
        var channels = c.inputChannels
        for level in 0..<c.depth {
            conv3x3(channels, c.filters(atLevel: level))
            conv3x3(c.filters(atLevel: level), c.filters(atLevel: level))
            channels = c.filters(atLevel: level)
            side /= 2
        }
        conv3x3(channels, c.filters(atLevel: c.depth))
        conv3x3(c.filters(atLevel: c.depth), c.filters(atLevel: c.depth))
        channels = c.filters(atLevel: c.depth)
        for level in stride(from: c.depth - 1, through: 0, by: -1) {
            let up = c.upsampling == .keepChannels ? channels : channels / 2
            flops += 2 * Double(batch * channels * side * side) * Double(up * 4)
            side *= 2
            conv3x3(up + c.filters(atLevel: level), c.filters(atLevel: level))
            conv3x3(c.filters(atLevel: level), c.filters(atLevel: level))
            channels = c.filters(atLevel: level)
        }
        flops += 2 * Double(batch * c.classes * side * side) * Double(channels)
        return flops / 1e9
    }
}

/// An invalid `ModelBenchmark.Options` value.
public struct ModelBenchmarkError: Error, CustomStringConvertible, Equatable {
    /// The field, e.g. "batch".
    public let field: String
    /// The offending value.
    public let value: String
    /// What was expected.
    public let expected: String
    public var description: String { "invalid benchmark option: \(field) = \(value), expected \(expected)" }
}
