import Foundation
import UNet

/// Times the gradient all-reduce of data-parallel training: an in-place sum of `floats` Float32
/// values over every rank of a `Collective`, as `unet bench allreduce` runs it under `mpirun`.
public enum AllReduceBenchmark {
    /// The measurement (the same on every rank; rank 0 prints it).
    public struct Result: Codable, Sendable, Equatable {
        /// Processes in the job.
        public var ranks: Int
        /// Bytes reduced per call.
        public var bytes: Int
        /// Median seconds per all-reduce (the slowest rank's time for each call).
        public var medianSeconds: Double
        /// Fastest call.
        public var minSeconds: Double
        /// Bus bandwidth as NCCL/Horovod count it: 2 (K-1)/K x bytes / seconds, GB/s.
        public var busGigabytesPerSecond: Double

        enum CodingKeys: String, CodingKey {
            case ranks, bytes, medianSeconds = "median_s", minSeconds = "min_s", busGigabytesPerSecond = "bus_gb_per_s"
        }

        /// One line.
        public var summary: String {
            String(format: "allreduce %.1f MB over %d rank%@: median %.4f s (min %.4f), bus bandwidth %.2f GB/s",
                   Double(bytes) / 1e6, ranks, ranks == 1 ? "" : "s", medianSeconds, minSeconds, busGigabytesPerSecond)
        }
    }

    /// Sums a buffer of `floats` values over all ranks `warmup + runs` times (as one call: the
    /// trainer's gradients of base 16 are 2.3 M floats, of base 64 37 M) and checks the sums.
    /// Returns nil on a rank whose sums are wrong (a broken transport), after telling every rank.
    public static func run(collective: Collective, floats: Int, runs: Int = 10, warmup: Int = 2) -> Result? {
        var buffer = [Float](repeating: 0, count: floats)
        var times: [Double] = []
        var correct = true
        for run in 0..<(warmup + runs) {
            // Every element sums to size * (size + 1) / 2 exactly (small integers).
            for i in buffer.indices { buffer[i] = Float(collective.rank + 1) }
            collective.barrier()
            let seconds = wallSeconds { collective.allReduceSum(&buffer) }
            // The slowest rank decides when the step can go on.
            let slowest = Double(collective.allReduceMax(Int64(seconds * 1e9))) / 1e9
            let expected = Float(collective.size * (collective.size + 1) / 2)
            if buffer.first != expected || buffer.last != expected { correct = false }
            if run >= warmup { times.append(slowest) }
        }
        guard !collective.any(!correct) else { return nil }
        let median = Benchmarking.median(times)!
        let bytes = floats * MemoryLayout<Float>.stride
        let k = Double(collective.size)
        let bus = k > 1 ? 2 * (k - 1) / k * Double(bytes) / median / 1e9 : 0
        return Result(ranks: collective.size, bytes: bytes, medianSeconds: median, minSeconds: times.min()!,
                      busGigabytesPerSecond: bus)
    }
}
