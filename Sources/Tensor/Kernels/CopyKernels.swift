/// Copies of many contiguous runs (the rows of a concatenation or a slice), spread over the threads
/// when there is enough to copy: a single core does not saturate memory bandwidth.
enum CopyKernels {
    /// One contiguous run to copy.
    struct Run {
        var source: UnsafePointer<Float>
        var destination: UnsafeMutablePointer<Float>
        var count: Int
    }

    /// Copies every run. Runs must not overlap each other's destinations.
    static func copy(_ runs: [Run]) {
        let total = runs.reduce(0) { $0 + $1.count }
        let threads = Threads.count
        if threads == 1 || total < ElementwiseKernels.parallelThreshold {
            for r in runs { r.destination.update(from: r.source, count: r.count) }
            return
        }
        // Cut long runs so that the pieces balance over the threads.
        let piece = Swift.max(1 << 15, total / (4 * threads))
        var pieces: [Run] = []
        pieces.reserveCapacity(runs.count + total / piece + 1)
        for r in runs {
            var start = 0
            while start < r.count {
                let n = Swift.min(piece, r.count - start)
                pieces.append(Run(source: r.source + start, destination: r.destination + start, count: n))
                start += n
            }
        }
        Threads.parallelRanges(pieces.count, minimumChunk: 1, chunksPerThread: 1) { range in
            for i in range { pieces[i].destination.update(from: pieces[i].source, count: pieces[i].count) }
        }
    }
}
