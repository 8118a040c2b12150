import ArgumentParser
import Tensor

/// `unet-tune`: the timing harnesses behind the convolution kernels' choices (docs/PERFORMANCE.md).
/// Each subcommand prints its timings; nothing is asserted. Not a product: run it from the package
/// with `swift run -c release unet-tune <command>` or `.build/release/unet-tune <command>`.
@main
struct UNetTune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unet-tune",
        abstract: "Timing harnesses for tuning the convolution kernels (figures in docs/PERFORMANCE.md).",
        discussion: """
            For quiet numbers run nothing else on the machine. The A/B commands time every 3x3 \
            convolution of a U-Net under two or three ConvolutionPolicy values, interleaved, and report \
            the least time of each.
            """,
        subcommands: [OpTimings.self, BackwardDataAB.self, WeightGradientAB.self, TapGemmAB.self, WinogradAB.self,
                      ScheduleSweep.self, PoolCapacity.self])
}

/// `--threads`, for every command.
struct ThreadCount: ParsableArguments {
    @Option(help: ArgumentHelp("Threads (default: the number of cores).", valueName: "n"))
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads \(threads): expected at least 1") }
    }

    /// Sets `Threads.count` when `--threads` was given.
    func apply() {
        if let threads { Threads.count = threads }
    }
}
