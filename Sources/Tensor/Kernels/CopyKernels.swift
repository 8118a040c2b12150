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

    /// `destination[c * destinationStride + r] = source[r * sourceStride + c]` for `rows` x `columns`
    /// (a matrix transpose between strided row-major buffers), in 16 x 16 tiles so both sides are
    /// read and written a cache line at a time; over the threads when `parallel` and large.
    static func transpose(_ source: UnsafePointer<Float>, rows: Int, columns: Int, sourceStride: Int,
                          into destination: UnsafeMutablePointer<Float>, destinationStride: Int, parallel: Bool) {
        let tile = 16
        func tileRow(_ r0: Int) {
            let r1 = Swift.min(rows, r0 + tile)
            var c0 = 0
            while c0 < columns {
                let c1 = Swift.min(columns, c0 + tile)
                for r in r0..<r1 {
                    let src = source + r * sourceStride
                    for c in c0..<c1 { destination[c &* destinationStride &+ r] = src[c] }
                }
                c0 = c1
            }
        }
        let tileRows = (rows + tile - 1) / tile
        if !parallel || rows * columns < ElementwiseKernels.parallelThreshold || Threads.count == 1 {
            for t in 0..<tileRows { tileRow(t * tile) }
        } else {
            Threads.parallelRanges(tileRows, minimumChunk: 1) { range in
                for t in range { tileRow(t * tile) }
            }
        }
    }
}
