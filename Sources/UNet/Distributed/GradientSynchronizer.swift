import NN
import Tensor

/// Sums the gradients of a model's parameters over the ranks of a `Collective` after each backward
/// pass, so every rank takes the same optimizer step (data parallelism, as PyTorch's DDP does).
///
/// Gradients are copied into flat buckets of at most `bucketFloats` values, each bucket summed with
/// one all-reduce, and copied back: a few large messages instead of one per parameter tensor, and
/// memory for one bucket rather than a second copy of every gradient.
public final class GradientSynchronizer {
    /// The processes the gradients are summed over.
    public let collective: Collective
    /// The trainable parameters whose gradients are summed.
    public let parameters: [Parameter]
    /// Floats per all-reduce.
    public let bucketFloats: Int
    private var bucket: [Float]

    /// 4 M floats (16 MB): DDP's default bucket is 25 MB; past a few MB the all-reduce runs at the
    /// transport's bandwidth, and smaller buckets keep the extra memory small.
    public static let defaultBucketFloats = 4 << 20

    /// Sums the gradients of the trainable ones among `parameters` over `collective`.
    public init(parameters: [Parameter], collective: Collective, bucketFloats: Int = defaultBucketFloats) {
        self.collective = collective
        self.parameters = parameters.filter(\.isTrainable)
        let total = self.parameters.reduce(0) { $0 + $1.shape.reduce(1, *) }
        self.bucketFloats = max(1, min(bucketFloats, total))
        bucket = []
    }

    /// Replaces every parameter's gradient by its sum over all ranks. Parameters without a gradient
    /// (none on any rank: every rank runs the same graph) are skipped.
    public func synchronize() {
        guard collective.size > 1 else { return }
        if bucket.isEmpty { bucket = [Float](repeating: 0, count: bucketFloats) }
        var pending: [(Parameter, Range<Int>)] = []  // what the bucket holds: a parameter's slice each
        var filled = 0
        bucket.withUnsafeMutableBufferPointer { flat in
            func flush() {
                guard filled > 0 else { return }
                collective.allReduceSum(UnsafeMutableBufferPointer(rebasing: flat[0..<filled]))
                var offset = 0
                for (parameter, range) in pending {
                    _ = parameter.value.withMutableGradient { g in
                        (g.baseAddress! + range.lowerBound).update(from: flat.baseAddress! + offset, count: range.count)
                    }
                    offset += range.count
                }
                pending.removeAll(keepingCapacity: true)
                filled = 0
            }
            for parameter in parameters {
                guard let count = parameter.value.withMutableGradient({ $0.count }) else { continue }
                // A tensor larger than a bucket goes in bucket-sized pieces.
                var start = 0
                while start < count {
                    if filled == flat.count { flush() }
                    let piece = min(count - start, flat.count - filled)
                    _ = parameter.value.withMutableGradient { g in
                        (flat.baseAddress! + filled).update(from: g.baseAddress! + start, count: piece)
                    }
                    pending.append((parameter, start..<(start + piece)))
                    filled += piece
                    start += piece
                }
            }
            flush()
        }
    }
}
