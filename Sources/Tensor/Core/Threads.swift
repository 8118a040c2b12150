import COpenBLAS
import Dispatch
import Synchronization

/// The library's one thread setting.
///
/// Policy (one level of parallelism at a time, measured in docs/PERFORMANCE.md):
/// - Work that splits into independent items (images of a batch, blocks of output rows, channel
///   ranges of an elementwise pass) runs through `Threads.parallelFor` with OpenBLAS at one thread
///   inside each item, so the two never oversubscribe the cores.
/// - A single large GEMM with nothing outside it to split is cut into bands of output columns or
///   rows, one single-threaded SGEMM per thread (`Gemm.sgemm(threads:)`). OpenBLAS's own thread
///   pool is not used: after each multi-threaded call its idle workers spin for ~0.1 s and take
///   a core from the next parallel loop (docs/PERFORMANCE.md, "Threads").
///
/// The library reads no environment variable: `Threads.count` starts at the number of cores and
/// changes only when set (the CLI sets it from `--threads`, else `UNET_THREADS`). Setting it is
/// thread-safe and may happen at any time; parallel loops that start afterwards use the new count.
/// A call already running may split some of its loops by the old count and some by the new, which
/// changes how its work is divided but not what it computes. Results do not depend on the count
/// beyond BLAS's float reassociation: every parallel loop partitions work so that each output
/// element is written by exactly one worker in a fixed order.
public enum Threads {
    /// The count, atomic so that it may be read and set from any thread.
    private static let setting = Atomic<Int>(max(1, System.coreCount))

    /// OpenBLAS set to one thread, once, before the first use of the setting.
    private static let blasSingleThreaded: Void = { openblas_set_num_threads(1) }()

    /// The number of threads the library uses (default: the number of cores). Must be at least 1.
    public static var count: Int {
        get { ensureConfigured(); return setting.load(ordering: .relaxed) }
        set {
            precondition(newValue >= 1, "Threads.count must be >= 1, got \(newValue)")
            ensureConfigured()
            setting.store(newValue, ordering: .relaxed)
        }
    }

    /// BLAS runs single-threaded by default; `withBLASThreads` raises it around a direct OpenBLAS call.
    @inline(__always) static func ensureConfigured() { _ = blasSingleThreaded }

    /// Runs `body(i)` for `i` in `0..<iterations`, spread over `count` threads when there is more
    /// than one iteration. Each iteration must write disjoint memory.
    @inlinable public static func parallelFor(_ iterations: Int, _ body: (Int) -> Void) {
        if iterations <= 1 || count == 1 {
            for i in 0..<iterations { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: iterations) { body($0) }
        }
    }

    /// Splits `0..<total` into about `chunksPerThread * count` contiguous ranges of at least
    /// `minimumChunk` elements and runs them in parallel. Ranges are fixed by the arguments, not by
    /// timing, so results are reproducible.
    @inlinable public static func parallelRanges(_ total: Int, minimumChunk: Int = 1 << 16,
                                                 chunksPerThread: Int = 4,
                                                 _ body: (Range<Int>) -> Void) {
        let threads = count
        if total <= minimumChunk || threads == 1 {
            if total > 0 { body(0..<total) }
            return
        }
        let chunks = min(threads * chunksPerThread, (total + minimumChunk - 1) / minimumChunk)
        let size = (total + chunks - 1) / chunks
        parallelFor(chunks) { c in
            let start = c * size
            let end = min(total, start + size)
            if start < end { body(start..<end) }
        }
    }

    /// Runs `body` with OpenBLAS using all `count` threads, then returns BLAS to one thread.
    /// For calling OpenBLAS directly (the benchmarks' bare-SGEMM reference); the library itself
    /// uses `Gemm.sgemm(threads:)`, because OpenBLAS's idle workers spin for ~0.1 s after such a
    /// call and slow whatever runs next on the same cores. Never call it from inside `parallelFor`.
    public static func withBLASThreads<R>(_ body: () throws -> R) rethrows -> R {
        let n = count
        if n == 1 { return try body() }
        openblas_set_num_threads(Int32(n))
        defer { openblas_set_num_threads(1) }
        return try body()
    }
}

/// Facts about the host used for defaults.
public enum System {
    /// Number of online processor cores.
    public static var coreCount: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
}

#if canImport(Glibc)
import Glibc
#endif
