/// Inverted dropout (training only; callers skip it in eval): zeroes each element with
/// `probability` and scales the kept ones by 1 / (1 - probability), so the expected value is
/// unchanged. `probability` 0 returns the input itself; 1 returns zeros.
///
/// The mask is a function of one 64-bit seed drawn from `generator` (which advances by one draw
/// on every call) and of the element index only: the same generator state gives the same mask
/// for any thread count. Backward regenerates the mask from that seed instead of storing it.
public func dropout(_ input: Tensor, probability: Float, generator: inout SeededGenerator) -> Tensor {
    OpProfiler.measure("dropout") {
        precondition(probability >= 0 && probability <= 1, "dropout: probability must be in [0, 1], got \(probability)")
        let seed = generator.next()
        if probability == 0 { return input }
        if probability == 1 { return input * 0 }
        let threshold = UInt32(clamping: Int64((Double(probability) * 4_294_967_296).rounded()))
        let scale = Float(1 / (1 - Double(probability)))
        var y = Tensor(uninitializedShape: input.shape)
        DropoutKernels.apply(input.storage.pointer, y.storage.pointer, input.count, seed: seed,
                             threshold: threshold, scale: scale)
        if Tensor.gradientNeeds(input) != nil {
            y.recordOp("dropout", inputs: [input]) { g in
                let dx = Tensor(uninitializedShape: g.shape)
                DropoutKernels.apply(g.storage.pointer, dx.storage.pointer, g.count, seed: seed,
                                     threshold: threshold, scale: scale)
                return [dx]
            }
        }
        return y
    }
}

enum DropoutKernels {
    /// Elements per random stream: stream i covers elements [i * streamLength, (i + 1) * streamLength)
    /// and is seeded from (seed, i), so streams can run on any thread.
    static let streamLength = 1 << 14

    /// y[i] = x[i] * scale where the element's 32 random bits are >= threshold, else 0.
    static func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int,
                      seed: UInt64, threshold: UInt32, scale: Float) {
        let streams = (count + streamLength - 1) / streamLength
        Threads.parallelRanges(streams, minimumChunk: 4) { range in
            for stream in range {
                var rng = SeededGenerator(seed: seed ^ (UInt64(stream) &* 0xD1B5_4A32_D192_ED03))
                let start = stream &* streamLength, end = min(count, start &+ streamLength)
                var i = start
                while i < end {
                    let bits = rng.next()
                    y[i] = UInt32(truncatingIfNeeded: bits) >= threshold ? x[i] * scale : 0
                    if i &+ 1 < end {
                        y[i &+ 1] = UInt32(truncatingIfNeeded: bits >> 32) >= threshold ? x[i &+ 1] * scale : 0
                    }
                    i &+= 2
                }
            }
        }
    }
}
