import ArgumentParser
import Benchmarking
import Tensor

struct PoolCapacity: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pool",
        abstract: "Run `unet bench train|infer`'s workload with another storage-pool capacity (the library's is 256 MiB).",
        discussion: """
            Peak RSS is per process, so compare capacities in separate runs, alternated, e.g.
              for mib in 64 128 192 256; do unet-tune pool --capacity-mib $mib --mode infer --base-filters 16; done
            """)

    @Option(name: .customLong("capacity-mib"), help: ArgumentHelp("Bytes the pool may keep above the in-use peak, in MiB (0: no pooling).", valueName: "mib"))
    var capacityMiB: Int
    @Option(help: ArgumentHelp("train or infer (default: infer).", valueName: "mode"))
    var mode = "infer"
    @Option(name: .customLong("base-filters"), help: ArgumentHelp("Filters of the first level (default: 16).", valueName: "n"))
    var baseFilters = 16
    @Option(help: ArgumentHelp("Input side in pixels (default: 512).", valueName: "px"))
    var size = 512
    @Option(help: ArgumentHelp("Images per step (default: 1).", valueName: "n"))
    var batch = 1
    @Option(help: ArgumentHelp("Timed steps; the median is reported (default: 7).", valueName: "n"))
    var runs = 7
    @OptionGroup var threadCount: ThreadCount

    var benchmarkMode: ModelBenchmark.Mode? { ModelBenchmark.Mode(rawValue: mode) }
    var options: ModelBenchmark.Options { ModelBenchmark.Options(baseFilters: baseFilters, size: size, batch: batch, runs: runs) }

    func validate() throws {
        if capacityMiB < 0 { throw ValidationError("--capacity-mib \(capacityMiB): expected 0 or more") }
        if benchmarkMode == nil { throw ValidationError("--mode \(mode): expected train or infer") }
        do { try options.validate() } catch { throw ValidationError("\(error)") }
    }

    func run() {
        threadCount.apply()
        StoragePool.shared.capacityBytes = capacityMiB << 20
        let result = ModelBenchmark.run(benchmarkMode!, options: options)
        print("POOL capacity \(capacityMiB) MiB: \(result.summary)")
    }
}
