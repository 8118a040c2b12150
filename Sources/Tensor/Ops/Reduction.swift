extension Tensor {
    /// Views `shape` around `axis` as (outer, extent, inner).
    func split(around axis: Int) -> (outer: Int, extent: Int, inner: Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    func normalizedAxis(_ axis: Int, _ op: String) -> Int {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < rank, "\(op): axis \(axis) out of range for shape \(shape)")
        return a
    }

    /// Sum over one axis, keeping it with extent 1 (no tape).
    func sumKeepingAxis(_ axis: Int) -> Tensor {
        let (outer, extent, inner) = split(around: axis)
        var outShape = shape
        outShape[axis] = 1
        let y = Tensor(repeating: 0, shape: outShape)
        let x = storage.pointer, p = y.storage.pointer
        if inner == 1 {
            for o in 0..<outer {
                var acc: Float = 0
                let row = x + o * extent
                for j in 0..<extent { acc += row[j] }
                p[o] = acc
            }
        } else {
            for o in 0..<outer {
                let dst = p + o * inner
                for j in 0..<extent {
                    let src = x + (o * extent + j) * inner
                    for i in 0..<inner { dst[i] += src[i] }
                }
            }
        }
        return y
    }

    /// Stretches this tensor to `target` by broadcasting (no tape).
    public func broadcasted(to target: [Int]) -> Tensor {
        if shape == target { return self }
        guard broadcastShape(shape, target) == target else {
            preconditionFailure("broadcasted(to:): shape \(shape) cannot be broadcast to \(target)")
        }
        let y = Tensor(uninitializedShape: target)
        broadcastZip(storage.pointer, shape, storage.pointer, shape, y.storage.pointer, target, FirstFunction())
        return y
    }

    /// The sum of all elements as a scalar tensor (accumulated in Double for accuracy).
    public func sum() -> Tensor {
        let x = storage.pointer
        var partial = [Double](repeating: 0, count: 64)
        let n = count
        let chunk = (n + 63) / 64
        partial.withUnsafeMutableBufferPointer { parts in
            let parts = parts.baseAddress!
            nonisolated(unsafe) let x = x
            Threads.parallelFor(n >= ElementwiseKernels.parallelThreshold ? 64 : 1) { c in
                let lo = n >= ElementwiseKernels.parallelThreshold ? c * chunk : 0
                let hi = n >= ElementwiseKernels.parallelThreshold ? Swift.min(n, lo + chunk) : n
                let acc = ElementwiseKernels.sumInDouble(x + lo, hi - lo)
                parts[c] = acc
            }
        }
        var y = Tensor(Float(partial.reduce(0, +)))
        if Tensor.gradientNeeds(self) != nil {
            let s = shape
            y.recordOp("sum", profiledAs: .elementwiseBackward, inputs: [self]) { g in [Tensor(repeating: g.scalar, shape: s)] }
        }
        return y
    }

    /// The mean of all elements as a scalar tensor.
    public func mean() -> Tensor { sum() * (1 / Float(Swift.max(count, 1))) }

    /// Sums over `axes`; with `keepingDimensions` the reduced axes stay with extent 1.
    public func sum(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let normalized = Set(axes.map { normalizedAxis($0, "sum(alongAxes:)") }).sorted()
        var y = self.detached
        for axis in normalized.reversed() { y = y.sumKeepingAxis(axis) }
        let keptShape = y.shape
        if !keepingDimensions {
            y.setShapeUnchecked(shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element))
        }
        if Tensor.gradientNeeds(self) != nil {
            let inputShape = shape
            y.recordOp("sum(alongAxes:)", profiledAs: .elementwiseBackward, inputs: [self]) { g in [g.reshaped(to: keptShape).broadcasted(to: inputShape)] }
        }
        return y
    }

    /// Sums over one axis.
    public func sum(alongAxis axis: Int, keepingDimensions: Bool = false) -> Tensor {
        sum(alongAxes: [axis], keepingDimensions: keepingDimensions)
    }

    /// Means over `axes`; with `keepingDimensions` the reduced axes stay with extent 1.
    public func mean(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let n = Set(axes.map { normalizedAxis($0, "mean(alongAxes:)") }).reduce(1) { $0 * shape[$1] }
        return sum(alongAxes: axes, keepingDimensions: keepingDimensions) * (1 / Float(Swift.max(n, 1)))
    }

    /// Means over one axis.
    public func mean(alongAxis axis: Int, keepingDimensions: Bool = false) -> Tensor {
        mean(alongAxes: [axis], keepingDimensions: keepingDimensions)
    }

    /// Maximum and its first index along `axis` (no tape). Indices are stored as Float.
    func maxAndArgmax(_ axis: Int) -> (values: Tensor, indices: [Int]) {
        let (outer, extent, inner) = split(around: axis)
        precondition(extent > 0, "max(alongAxis:): axis \(axis) of shape \(shape) is empty")
        var outShape = shape
        outShape.remove(at: axis)
        let values = Tensor(uninitializedShape: outShape)
        var indices = [Int](repeating: 0, count: outer * inner)
        let x = storage.pointer, v = values.storage.pointer
        for o in 0..<outer {
            for i in 0..<inner {
                var best = x[o * extent * inner + i], bestJ = 0
                for j in 1..<extent {
                    let value = x[(o * extent + j) * inner + i]
                    if value > best || (best.isNaN && !value.isNaN) { best = value; bestJ = j }
                }
                v[o * inner + i] = best
                indices[o * inner + i] = bestJ
            }
        }
        return (values, indices)
    }

    /// The maximum along `axis` (the axis is removed). The gradient flows to the first maximal element.
    public func max(alongAxis axis: Int) -> Tensor {
        let a = normalizedAxis(axis, "max(alongAxis:)")
        var (y, indices) = maxAndArgmax(a)
        if Tensor.gradientNeeds(self) != nil {
            let (outer, extent, inner) = split(around: a)
            let s = shape
            y.recordOp("max", profiledAs: .elementwiseBackward, inputs: [self]) { g in
                let dx = Tensor.zeros(s)
                let gp = g.storage.pointer, dp = dx.storage.pointer
                for o in 0..<outer { for i in 0..<inner {
                    dp[(o * extent + indices[o * inner + i]) * inner + i] = gp[o * inner + i]
                } }
                return [dx]
            }
        }
        return y
    }

    /// The index of the maximum along `axis` (the axis is removed), as Float values. Not differentiable.
    public func argmax(alongAxis axis: Int) -> Tensor {
        let a = normalizedAxis(axis, "argmax(alongAxis:)")
        let (values, indices) = maxAndArgmax(a)
        return Tensor(shape: values.shape, scalars: indices.map(Float.init))
    }
}
