/// Standalone elementwise activations in 16-lane form, sharing the fused batch-norm kernels'
/// activation code (`NormActivationKernel`). Memory-bound passes split over both cores.
enum ActivationKernels {
    /// y = activation(x).
    static func forward<A: NormActivationKernel>(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                                 _ count: Int, _ act: A) {
        Threads.parallelRanges(count, minimumChunk: ElementwiseKernels.parallelThreshold) { range in
            var i = range.lowerBound
            while i &+ 16 <= range.upperBound {
                VectorMath.store(act.apply(VectorMath.load(x + i)), y + i)
                i &+= 16
            }
            if i < range.upperBound {
                let r = range.upperBound &- i
                VectorMath.storePartial(act.apply(VectorMath.loadPartial(x + i, r)), y + i, r)
            }
        }
    }

    /// dx = g * activation'(x), from the input x and the output y (either may be unused).
    static func backward<A: NormActivationKernel>(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                                                  _ g: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                                                  _ count: Int, _ act: A) {
        Threads.parallelRanges(count, minimumChunk: ElementwiseKernels.parallelThreshold) { range in
            var i = range.lowerBound
            while i &+ 16 <= range.upperBound {
                let yv = A.usesOutput ? VectorMath.load(y + i) : Vector16()
                VectorMath.store(act.backward(VectorMath.load(g + i), z: VectorMath.load(x + i), y: yv), dx + i)
                i &+= 16
            }
            if i < range.upperBound {
                let r = range.upperBound &- i
                let yv = A.usesOutput ? VectorMath.loadPartial(y + i, r) : Vector16()
                VectorMath.storePartial(act.backward(VectorMath.loadPartial(g + i, r), z: VectorMath.loadPartial(x + i, r),
                                                     y: yv), dx + i, r)
            }
        }
    }
}
