import Foundation

// Timing and output helpers shared by the benchmark reports (TensorReport, ConvolutionReport,
// ModelBenchmark, SystemReport).

/// Wall-clock seconds taken by `body`.
public func wallSeconds(_ body: () -> Void) -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// The median of `values` (the mean of the middle two for an even count); nil when empty.
public func median(_ values: [Double]) -> Double? {
    guard !values.isEmpty else { return nil }
    let sorted = values.sorted()
    let mid = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/// Median wall-clock seconds of `body` over `repetitions` runs after one warm-up run.
public func medianSeconds(repetitions: Int, _ body: () -> Void) -> Double {
    body()
    return median((0..<max(1, repetitions)).map { _ in wallSeconds(body) })!
}

/// Peak resident set size of this process so far, in MiB (getrusage).
public func peakResidentMebibytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// Pretty-printed, key-sorted JSON of `value`.
public func jsonString<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self)
}

/// The rows of a benchmark with the system they were measured on: what `unet bench conv --json` and
/// `unet bench tensor --json` print.
public struct BenchmarkRows<Row: Encodable>: Encodable {
    /// The machine, its BLAS kernel and thread settings.
    public var system: SystemReport
    /// The measurements.
    public var rows: [Row]

    /// Pairs `rows` with `system`.
    public init(system: SystemReport, rows: [Row]) {
        self.system = system
        self.rows = rows
    }
}
