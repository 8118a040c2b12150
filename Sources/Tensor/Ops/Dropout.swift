/// Inverted dropout (training only; callers skip it in eval): zeroes each element with
/// `probability` and scales the kept ones by 1 / (1 - probability), so the expected value is
/// unchanged. `probability` 0 returns the input itself; 1 returns zeros.
///
/// The mask is a function of one 64-bit seed drawn from `generator` (which advances by one draw
/// on every call) and of the element index only: the same generator state gives the same mask
/// for any thread count. Backward regenerates the mask from that seed instead of storing it.
public func dropout(_ input: Tensor, probability: Float, generator: inout SeededGenerator) -> Tensor {
    OpProfiler.measure(.dropout) {
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
            y.recordOp("dropout", profiledAs: .elementwiseBackward, inputs: [input]) { g in
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

    /// Random words drawn into a stack buffer before the vector pass uses them.
    static let blockLength = 1024

    /// y[i] = x[i] * scale where the element's 32 random bits are >= threshold, else x[i] * 0.
    static func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int,
                      seed: UInt64, threshold: UInt32, scale: Float) {
        let streams = (count + streamLength - 1) / streamLength
        Threads.parallelRanges(streams, minimumChunk: 4) { range in
            // The keep decision is a coin flip: a branch per element would mispredict half the time,
            // and LLVM turns scalar selects back into branches. So the random words go to a buffer
            // first, then a 16-lane pass compares and multiplies without branches.
            withUnsafeTemporaryAllocation(of: UInt64.self, capacity: blockLength / 2) { words in
                let words = words.baseAddress!
                let bits = UnsafeRawPointer(words).assumingMemoryBound(to: UInt32.self)
                let thresholdVector = SIMD16<UInt32>(repeating: threshold), scaleVector = Vector16(repeating: scale)
                for stream in range {
                    var rng = SeededGenerator(seed: seed ^ (UInt64(stream) &* 0xD1B5_4A32_D192_ED03))
                    var start = stream &* streamLength
                    let streamEnd = min(count, start &+ streamLength)
                    while start < streamEnd {
                        let m = min(blockLength, streamEnd &- start)
                        for w in 0..<((m &+ 1) / 2) { words[w] = rng.next() }
                        var i = 0
                        while i &+ 16 <= m {
                            let random = UnsafeRawPointer(bits + i).loadUnaligned(as: SIMD16<UInt32>.self)
                            let keep = scaleVector.replacing(with: 0, where: random .< thresholdVector)
                            VectorMath.store(VectorMath.load(x + (start &+ i)) * keep, y + (start &+ i))
                            i &+= 16
                        }
                        while i < m {
                            y[start &+ i] = x[start &+ i] * (bits[i] >= threshold ? scale : 0)
                            i &+= 1
                        }
                        start &+= m
                    }
                }
            }
        }
    }
}
