import ArgumentParser
import Benchmarking
import Foundation
import Tensor
import UNet

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks: the convolution kernels, a training step, an inference pass, tensor ops.",
        discussion: """
            unet bench train   one training step (forward, loss, backward, Adam) of the tutorial U-Net
            unet bench infer   one inference forward pass
            unet bench conv    every convolution of the tutorial U-Net against bare SGEMM
            unet bench tensor  memory-bound tensor ops and matmul
            unet bench allreduce  the gradient all-reduce of data-parallel training (under mpirun)
            The train/infer workloads match the maintainers' PyTorch reference benchmark (the same model, \
            the same counting of GFLOP), for side-by-side comparisons (docs/PERFORMANCE.md). For quiet numbers run \
            nothing else on the machine.

            \(ExitStatus.helpTable)
            """,
        subcommands: [BenchTrain.self, BenchInfer.self, BenchConv.self, BenchTensor.self, BenchAllReduce.self])
}

/// Options of `bench train` and `bench infer`.
struct ModelBenchOptions: ParsableArguments {
    @Option(name: .customLong("base-filters"), help: ArgumentHelp("Filters of the first level (default: 16; the tutorial: 64).", valueName: "n"))
    var baseFilters: Int = 16

    @Option(help: ArgumentHelp("Input side in pixels, a multiple of 16 for depth 4 (default: 512).", valueName: "px"))
    var size: Int = 512

    @Option(help: ArgumentHelp("Images per step (default: 1).", valueName: "n"))
    var batch: Int = 1

    @Option(help: ArgumentHelp("Pooling levels (default: 4).", valueName: "n"))
    var depth: Int = 4

    @Option(help: ArgumentHelp("Timed steps; the median is reported (default: 5).", valueName: "n"))
    var runs: Int = 5

    @Option(help: ArgumentHelp("Untimed steps before (default: 1).", valueName: "n"))
    var warmup: Int = 1

    @OptionGroup var threadOptions: ThreadOptions

    @Flag(help: "Print one JSON object (keys median_s, min_s, max_s, peak_rss_mib, base_filters, size, batch, threads, mode, gflop_per_forward, params, system, ...).")
    var json = false

    @Flag(help: "Also print where the time of the timed steps goes, by kind of op.")
    var profile = false

    var options: ModelBenchmark.Options {
        ModelBenchmark.Options(baseFilters: baseFilters, size: size, batch: batch, depth: depth, runs: runs, warmup: warmup)
    }

    func validate() throws {
        do { try options.validate() } catch { throw CLIError.usage(classify(error).message) }
    }

    func run(_ mode: ModelBenchmark.Mode) throws {
        threadOptions.apply()
        let collective = try jobCollective()
        guard batch >= collective.size else {
            throw CLIError.usage("--batch \(batch): at least one image per process, and there are \(collective.size)")
        }
        let system = currentSystemReport()
        warnIfBLASKernelIsNarrow(system)
        let options = self.options
        let interactive = stdoutIsTerminal && !json
        if !json {
            print(system.summaryLine)
            print("bench \(mode.rawValue): base \(baseFilters), depth \(depth), \(batch) x \(size)^2, \(Threads.count) thread(s), \(warmup) warm-up + \(runs) timed step(s)")
        }
        var wallSeconds = 0.0
        var result = ModelBenchmark.run(mode, options: options, collective: collective, beforeMeasuredSteps: {
            if profile { startProfiling() }
        }) { run, seconds in
            wallSeconds += seconds
            if interactive { print(String(format: "  step %d: %.3f s", run, seconds)) }
        }
        let rows = profile ? stopProfiling() : []
        result.system = system
        if json {
            print(result.json)
        } else {
            print(result.summary)
        }
        if profile {
            // The profile goes to stderr with --json, so stdout stays one JSON object.
            let text = profileTable(rows, steps: options.runs, wallSeconds: wallSeconds)
            if json { printError(text) } else { print(text) }
        }
    }
}

// MARK: profile

/// A breakdown row: kind of op, seconds, calls.
struct ProfileRow {
    var category: String
    var seconds: Double
    var calls: Int
}

/// Starts `OpProfiler` (exclusive wall time per kind of op) on this thread, from zero.
func startProfiling() {
    OpProfiler.isEnabled = true
    OpProfiler.reset()
}

/// Stops `OpProfiler` and returns its rows.
func stopProfiling() -> [ProfileRow] {
    let rows = OpProfiler.snapshot()
    OpProfiler.isEnabled = false
    return rows.map { ProfileRow(category: $0.category, seconds: $0.seconds, calls: $0.calls) }
}

/// The profile per step; `wallSeconds` (all timed steps) adds a row for time outside any measured op.
func profileTable(_ rows: [ProfileRow], steps: Int, wallSeconds: Double) -> String {
    guard !rows.isEmpty else { return "profile: no op was measured" }
    var rows = rows
    let measured = rows.reduce(0) { $0 + $1.seconds }
    if wallSeconds > measured { rows.append(ProfileRow(category: "other (outside measured ops)", seconds: wallSeconds - measured, calls: 0)) }
    let total = rows.reduce(0) { $0 + $1.seconds }
    var lines = ["profile of \(steps) timed step(s), per step:",
                 "kind of op                          s/step     share    calls/step"]
    for row in rows.sorted(by: { $0.seconds > $1.seconds }) {
        lines.append(row.category.padding(toLength: 32, withPad: " ", startingAt: 0)
            + String(format: "  %8.4f  %7.1f %%  %10.1f", row.seconds / Double(steps), 100 * row.seconds / max(total, 1e-12),
                     Double(row.calls) / Double(steps)))
    }
    lines.append("total".padding(toLength: 32, withPad: " ", startingAt: 0) + String(format: "  %8.4f", total / Double(steps)))
    return lines.joined(separator: "\n")
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Time one training step (forward, cross-entropy, backward, Adam) of the tutorial U-Net.",
        discussion: "Example: unet bench train --base-filters 16 --size 512 --batch 1 --threads 2 --json")
    @OptionGroup var bench: ModelBenchOptions
    func run() throws { try bench.run(.train) }
}

struct BenchInfer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Time one inference forward pass (eval mode, no tape) of the tutorial U-Net.",
        discussion: "Example: unet bench infer --base-filters 64 --size 512 --json")
    @OptionGroup var bench: ModelBenchOptions
    func run() throws { try bench.run(.infer) }
}

struct BenchConv: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conv",
        abstract: "Time the convolution kernels on every convolution of the tutorial U-Net (512^2, base 64) against bare SGEMM.",
        discussion: """
            Takes 1-2 minutes on 2 cores; --quick measures 4 small layers once. --base-filters, --size and \
            --batch measure the convolutions of another U-Net shape, e.g. the base-16 training step:
              unet bench conv --base-filters 16 --size 256 --batch 4
            """)
    @Flag(help: "A few small layers, one repetition (seconds).")
    var quick = false
    @Option(help: ArgumentHelp("Filters of the first level (default: 64).", valueName: "n"))
    var baseFilters = 64
    @Option(help: ArgumentHelp("Input height and width, a multiple of 16 (default: 512).", valueName: "pixels"))
    var size = 512
    @Option(help: ArgumentHelp("Images per call (default: 1).", valueName: "n"))
    var batch = 1
    @Option(help: ArgumentHelp("How each call uses the threads: automatic, lanes (work items spread over the threads, one single-threaded GEMM each) or split-gemm (each GEMM split over the threads).",
                               valueName: "policy"))
    var parallelism: ConvolutionPolicy.Parallelism = .automatic
    @Option(help: ArgumentHelp("Algorithm of the 3x3 stride-1 convolutions: automatic (the schedule's choice), exact, f2 or f4 (Winograd F(2x2,3x3) or F(4x4,3x3) wherever it applies).",
                               valueName: "algorithm"))
    var convAlgorithm: BenchConvAlgorithm = .automatic
    @Option(help: ArgumentHelp("Repetitions per measurement (median; default: 5, --quick: 1).", valueName: "n"))
    var repetitions: Int?
    @Flag(help: "Print one JSON object: system (as 'unet system --json') and rows.")
    var json = false
    @OptionGroup var threadOptions: ThreadOptions

    func validate() throws {
        if let repetitions, repetitions < 1 || repetitions > 1000 { throw CLIError.usage("--repetitions \(repetitions): expected 1...1000") }
        if baseFilters < 1 || baseFilters > 256 { throw CLIError.usage("--base-filters \(baseFilters): expected 1...256") }
        if size < 16 || size > 4096 || size % 16 != 0 { throw CLIError.usage("--size \(size): expected a multiple of 16 in 16...4096") }
        if batch < 1 || batch > 256 { throw CLIError.usage("--batch \(batch): expected 1...256") }
    }

    func run() throws {
        threadOptions.apply()
        let system = currentSystemReport()
        warnIfBLASKernelIsNarrow(system)
        let interactive = stdoutIsTerminal && !json
        let custom = baseFilters != 64 || size != 512 || batch != 1
        let what = quick ? "quick layers" : custom ? "the convolutions of a base-\(baseFilters) U-Net on \(batch) x \(size)^2"
            : "the tutorial U-Net's convolutions"
        if !json { print(system.summaryLine) }
        if !json { print("bench conv: \(what), \(Threads.count) thread(s), parallelism \(parallelism.rawValue), algorithm \(convAlgorithm.rawValue)") }
        let layers = quick ? nil : ConvolutionReport.layers(baseFilters: baseFilters, size: size, batch: batch)
        let policy = ConvolutionPolicy(parallelism: parallelism, algorithm: convAlgorithm.algorithm)
        let rows = ConvolutionReport.run(quick: quick, layers: layers, repetitions: repetitions, policy: policy) { row in
            if interactive { print("\r\u{1B}[2K  \(row.layer.name) \(row.measurement.op)", terminator: ""); fflush(stdout) }
        }
        if interactive { print("\r\u{1B}[2K", terminator: "") }
        print(json ? jsonString(BenchmarkRows(system: system, rows: rows)) : ConvolutionReport.table(rows))
    }
}

struct BenchTensor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tensor",
        abstract: "Time memory-bound tensor ops (16M floats) and a 1024^3 matmul against bare SGEMM.")
    @Flag(help: "Print one JSON object: system (as 'unet system --json') and rows.")
    var json = false
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        threadOptions.apply()
        let system = currentSystemReport()
        warnIfBLASKernelIsNarrow(system)
        if !json { print(system.summaryLine) }
        let rows = TensorReport.run()
        print(json ? jsonString(BenchmarkRows(system: system, rows: rows)) : TensorReport.format(rows))
    }
}

extension ConvolutionPolicy.Parallelism: ExpressibleByArgument {}

/// `unet bench conv --conv-algorithm`.
enum BenchConvAlgorithm: String, CaseIterable, ExpressibleByArgument {
    case automatic, exact, f2, f4

    var algorithm: ConvolutionPolicy.Algorithm {
        switch self {
        case .automatic: return .automatic
        case .exact: return .exact
        case .f2: return .winograd(.f2)
        case .f4: return .winograd(.f4)
        }
    }
}
