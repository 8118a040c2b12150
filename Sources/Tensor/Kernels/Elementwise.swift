#if canImport(Glibc)
import Glibc
#endif

/// An elementwise function of one value. Kernels are generic over it so that, specialized inside
/// this module, the function inlines into the loop and the loop vectorizes (a closure would be an
/// indirect call per element).
public protocol UnaryFunction {
    /// The value at `x`.
    func callAsFunction(_ x: Float) -> Float
}

/// A unary function with its derivative, expressed through input `x` and output `y`.
public protocol DifferentiableUnaryFunction: UnaryFunction {
    /// dy/dx at `x` where `y = self(x)`.
    func derivative(x: Float, y: Float) -> Float
}

/// An elementwise function of two values.
public protocol BinaryFunction {
    /// The value at (`a`, `b`).
    func callAsFunction(_ a: Float, _ b: Float) -> Float
}

/// Plain loops over buffers for elementwise work. Large arrays are split across threads
/// (memory-bound work scales to both cores); small ones run inline to avoid the wake-up cost.
enum ElementwiseKernels {
    /// Below this many elements a pass stays on the calling thread.
    static let parallelThreshold = 1 << 17

    @inline(__always)
    static func map<F: UnaryFunction>(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ f: F) {
        Threads.parallelRanges(n, minimumChunk: parallelThreshold) { r in
            for i in r { y[i] = f(x[i]) }
        }
    }

    @inline(__always)
    static func zip<F: BinaryFunction>(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                        _ y: UnsafeMutablePointer<Float>, _ n: Int, _ f: F) {
        Threads.parallelRanges(n, minimumChunk: parallelThreshold) { r in
            for i in r { y[i] = f(a[i], b[i]) }
        }
    }

    /// dx[i] = g[i] * f'(x[i], y[i])
    @inline(__always)
    static func derivative<F: DifferentiableUnaryFunction>(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                                                           _ g: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                                                           _ n: Int, _ f: F) {
        Threads.parallelRanges(n, minimumChunk: parallelThreshold) { r in
            for i in r { dx[i] = g[i] * f.derivative(x: x[i], y: y[i]) }
        }
    }

    /// y[i] += x[i]
    static func accumulate(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, _ n: Int) {
        Threads.parallelRanges(n, minimumChunk: parallelThreshold) { r in
            for i in r { y[i] += x[i] }
        }
    }

    /// Sum of `n` floats: 16-lane Float partial sums over blocks of 256, blocks totalled in Double.
    /// Vector lanes let the loop vectorize (a scalar `+=` chain cannot be reordered); the short
    /// blocks keep the Float rounding error small.
    static func sumInDouble(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
        var total: Double = 0
        var i = 0
        let raw = UnsafeRawPointer(x)
        while i + 256 <= n {
            var lanes = SIMD16<Float>()
            var k = i
            while k < i + 256 {
                lanes += raw.loadUnaligned(fromByteOffset: k &* 4, as: SIMD16<Float>.self)
                k &+= 16
            }
            total += Double(lanes.sum())
            i += 256
        }
        var tail: Float = 0
        while i < n { tail += x[i]; i += 1 }
        return total + Double(tail)
    }
}

/// Strides for reading a tensor of `shape` as if it had `target` shape (numpy broadcasting):
/// stride 0 on broadcast axes.
func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
    var strides = [Int](repeating: 0, count: target.count)
    var step = 1
    let offset = target.count - shape.count
    for axis in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[axis + offset] = shape[axis] == 1 ? 0 : step
        step *= shape[axis]
    }
    return strides
}

/// The broadcast result shape of `a` and `b`, or nil when they are incompatible.
func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
    let rank = max(a.count, b.count)
    var result = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        if da == db || db == 1 { result[i] = da } else if da == 1 { result[i] = db } else { return nil }
    }
    return result
}

/// Applies `f` over the broadcast of `a` (shape sa) and `b` (shape sb) into `y` of shape `out`.
/// The innermost axis is handled with a tight loop; outer axes by an odometer.
func broadcastZip<F: BinaryFunction>(_ a: UnsafePointer<Float>, _ sa: [Int], _ b: UnsafePointer<Float>, _ sb: [Int],
                                     _ y: UnsafeMutablePointer<Float>, _ out: [Int], _ f: F) {
    let rank = out.count
    if rank == 0 { y[0] = f(a[0], b[0]); return }
    let stA = broadcastStrides(sa, to: out), stB = broadcastStrides(sb, to: out)
    let inner = out[rank - 1]
    let ia = stA[rank - 1], ib = stB[rank - 1]
    let outer = Tensor.elementCount(out) / max(inner, 1)
    var index = [Int](repeating: 0, count: rank)
    var offA = 0, offB = 0
    for o in 0..<outer {
        let yRow = y + o * inner
        for j in 0..<inner { yRow[j] = f(a[offA + j * ia], b[offB + j * ib]) }
        var axis = rank - 2
        while axis >= 0 {
            index[axis] += 1
            offA += stA[axis]; offB += stB[axis]
            if index[axis] < out[axis] { break }
            offA -= stA[axis] * out[axis]; offB -= stB[axis] * out[axis]
            index[axis] = 0
            axis -= 1
        }
    }
}
