import Foundation
import Tensor

/// Throughput of the Tensor module's memory-bound ops and its matmul, against a bare SGEMM in
/// the same run (the figures in docs/PERFORMANCE.md, section "Tensor").
public enum TensorReport {
    /// One measured op.
    public struct Row: Codable, Sendable {
        /// What was measured, e.g. "relu 16M".
        public var name: String
        /// Median seconds per call.
        public var seconds: Double
        /// GB/s counting bytes read and written (memory-bound rows), else nil.
        public var gigabytesPerSecond: Double?
        /// GFLOP/s (matmul rows), else nil.
        public var gflops: Double?
        /// For matmul: GFLOP/s of a bare `cblas_sgemm` of the same shape in the same run.
        public var sgemmGflops: Double?

        enum CodingKeys: String, CodingKey {
            case name, seconds, gigabytesPerSecond = "gb_per_s", gflops, sgemmGflops = "sgemm_gflops"
        }
    }

    /// Runs the elementwise rows on `elements` floats and matmul of `matrixSize`^3.
    public static func run(elements: Int = 16 << 20, matrixSize: Int = 1024, repetitions: Int = 7) -> [Row] {
        var rng = SeededGenerator(seed: 1)
        let a = Tensor.randomUniform([elements], lowerBound: -1, upperBound: 1, generator: &rng)
        let b = Tensor.randomUniform([elements], lowerBound: -1, upperBound: 1, generator: &rng)
        let bytes1 = Double(elements * 4 * 2), bytes2 = Double(elements * 4 * 3)
        var rows: [Row] = []
        func memoryRow(_ name: String, _ bytes: Double, _ body: () -> Tensor) {
            let t = medianSeconds(repetitions: repetitions) { _ = body() }
            rows.append(Row(name: name, seconds: t, gigabytesPerSecond: bytes / t / 1e9))
        }
        memoryRow("relu \(elements >> 20)M", bytes1) { a.relu() }
        memoryRow("elu \(elements >> 20)M", bytes1) { a.elu() }
        memoryRow("scale+shift \(elements >> 20)M", bytes1) { a * 2 + 1 }
        memoryRow("add \(elements >> 20)M", bytes2) { a + b }
        memoryRow("mul \(elements >> 20)M", bytes2) { a * b }
        let sumSeconds = medianSeconds(repetitions: repetitions) { _ = a.sum() }
        rows.append(Row(name: "sum \(elements >> 20)M", seconds: sumSeconds,
                        gigabytesPerSecond: Double(elements * 4) / sumSeconds / 1e9))

        let n = matrixSize
        let x = Tensor.randomUniform([n, n], generator: &rng), y = Tensor.randomUniform([n, n], generator: &rng)
        let sgemm = BareSgemm(m: n, n: n, k: n)
        defer { sgemm.deallocate() }
        var ours = Double.infinity, bare = Double.infinity
        // Interleaved, so drift in machine load affects both alike.
        for _ in 0..<3 {
            ours = min(ours, medianSeconds(repetitions: repetitions) { _ = matmul(x, y) })
            bare = min(bare, medianSeconds(repetitions: repetitions, sgemm.run))
            BareSgemm.waitForIdleWorkers()
        }
        rows.append(Row(name: "matmul \(n)^3", seconds: ours, gflops: sgemm.flops / ours / 1e9, sgemmGflops: sgemm.flops / bare / 1e9))
        return rows
    }

    /// A plain-text table of `rows`.
    public static func format(_ rows: [Row]) -> String {
        var lines = ["op                      seconds      GB/s    GFLOP/s  sgemm GFLOP/s"]
        func column(_ value: Double?, _ width: Int) -> String {
            let text = value.map { String(format: "%.1f", $0) } ?? "-"
            return String(repeating: " ", count: max(0, width - text.count)) + text
        }
        for r in rows {
            lines.append(r.name.padding(toLength: 22, withPad: " ", startingAt: 0)
                + String(format: "  %9.5f", r.seconds) + column(r.gigabytesPerSecond, 10)
                + column(r.gflops, 11) + column(r.sgemmGflops, 15))
        }
        return lines.joined(separator: "\n")
    }
}
