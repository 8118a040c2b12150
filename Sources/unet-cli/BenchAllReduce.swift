import ArgumentParser
import Benchmarking
import Foundation
import UNet

struct BenchAllReduce: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Time the gradient all-reduce of data-parallel training (run it under mpirun).",
        discussion: """
            Sums a buffer over every rank, as `mpirun -np K unet train` does with the gradients after \
            each step. The default size is the base-16 U-Net's gradients (2.3 M floats, 9.3 MB); the \
            base-64 U-Net's are 37 M floats (--megabytes 148). Example:
              mpirun -np 2 unet bench allreduce --megabytes 148
            Without mpirun it runs on one rank (nothing to exchange).
            """)

    @Option(help: ArgumentHelp("Megabytes (10^6 bytes) of Float32 per all-reduce (default: 9.25).", valueName: "MB"))
    var megabytes: Double = 9.25

    @Option(help: ArgumentHelp("Timed all-reduces; the median is reported (default: 10).", valueName: "n"))
    var runs: Int = 10

    @Flag(help: "Print one JSON object (keys ranks, bytes, median_s, min_s, bus_gb_per_s).")
    var json = false

    func validate() throws {
        guard megabytes > 0 && megabytes <= 16_000 else { throw CLIError.usage("--megabytes \(megabytes): expected more than 0, at most 16000") }
        guard runs >= 1 && runs <= 1000 else { throw CLIError.usage("--runs \(runs): expected 1...1000") }
    }

    func run() throws {
        let collective = try jobCollective()
        let floats = max(1, Int(megabytes * 1e6) / MemoryLayout<Float>.stride)
        guard let result = AllReduceBenchmark.run(collective: collective, floats: floats, runs: runs) else {
            throw CLIError(.failure, "the all-reduce gave wrong sums: the MPI transport is broken")
        }
        if collective.isLeader { print(json ? jsonString(result) : result.summary) }
    }
}
