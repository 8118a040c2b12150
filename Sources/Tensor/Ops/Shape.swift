extension Tensor {
    /// The same elements under a new shape with the same element count. One extent may be -1 (inferred).
    public func reshaped(to newShape: [Int]) -> Tensor {
        var target = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != inferred }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "reshaped(to:): cannot infer -1 in \(newShape) for \(count) elements of \(shape)")
            target[inferred] = count / known
        }
        precondition(Tensor.elementCount(target) == count && target.allSatisfy { $0 >= 0 },
                     "reshaped(to:): shape \(shape) (\(count) elements) cannot become \(newShape)")
        var y = self.detached
        y.setShapeUnchecked(target)
        if Tensor.gradientNeeds(self) != nil {
            let s = shape
            y.recordOp("reshape", profiledAs: .elementwiseBackward, inputs: [self]) { g in [g.reshaped(to: s)] }
        }
        return y
    }

    /// Inserts an axis of extent 1 at `axis`.
    public func expandingShape(at axis: Int) -> Tensor {
        let a = axis < 0 ? axis + rank + 1 : axis
        precondition(a >= 0 && a <= rank, "expandingShape(at:): axis \(axis) out of range for shape \(shape)")
        var s = shape
        s.insert(1, at: a)
        return reshaped(to: s)
    }

    /// Removes axes of extent 1 (all of them, or only `axes`).
    public func squeezingShape(at axes: [Int]? = nil) -> Tensor {
        let remove = Set((axes ?? shape.indices.filter { shape[$0] == 1 }).map { normalizedAxis($0, "squeezingShape") })
        for a in remove { precondition(shape[a] == 1, "squeezingShape: axis \(a) of shape \(shape) has extent \(shape[a]), not 1") }
        return reshaped(to: shape.indices.filter { !remove.contains($0) }.map { shape[$0] })
    }

    /// Reorders axes: result axis i is input axis `permutation[i]`.
    public func permuted(_ permutation: [Int]) -> Tensor {
        precondition(permutation.sorted() == Array(0..<rank), "permuted: \(permutation) is not a permutation of the axes of \(shape)")
        let outShape = permutation.map { shape[$0] }
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
        let strides = permutation.map { inStrides[$0] }
        var y = Tensor(uninitializedShape: outShape)
        let x = storage.pointer, p = y.storage.pointer
        if count > 0 {
            var index = [Int](repeating: 0, count: rank)
            var src = 0
            for dst in 0..<count {
                p[dst] = x[src]
                var axis = rank - 1
                while axis >= 0 {
                    index[axis] += 1
                    src += strides[axis]
                    if index[axis] < outShape[axis] { break }
                    src -= strides[axis] * outShape[axis]
                    index[axis] = 0
                    axis -= 1
                }
            }
        }
        if Tensor.gradientNeeds(self) != nil {
            var inverse = [Int](repeating: 0, count: rank)
            for (i, p) in permutation.enumerated() { inverse[p] = i }
            y.recordOp("permute", profiledAs: .elementwiseBackward, inputs: [self]) { g in [g.permuted(inverse)] }
        }
        return y
    }

    /// Swaps two axes (by default the last two).
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var p = Array(0..<rank)
        p.swapAt(normalizedAxis(a, "transposed"), normalizedAxis(b, "transposed"))
        return permuted(p)
    }

    /// The elements with index in `range` along `axis`.
    public func slice(alongAxis axis: Int, _ range: Range<Int>) -> Tensor {
        let a = normalizedAxis(axis, "slice")
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[a],
                     "slice: range \(range) out of bounds for axis \(a) of shape \(shape)")
        let (outer, extent, inner) = split(around: a)
        var outShape = shape
        outShape[a] = range.count
        var y = Tensor(uninitializedShape: outShape)
        let x = storage.pointer, p = y.storage.pointer
        let rowCount = range.count * inner
        CopyKernels.copy((0..<outer).map { o in
            CopyKernels.Run(source: x + (o * extent + range.lowerBound) * inner, destination: p + o * rowCount, count: rowCount)
        })
        if Tensor.gradientNeeds(self) != nil {
            let s = shape
            y.recordOp("slice", profiledAs: .concatCropBackward, inputs: [self]) { g in
                let dx = Tensor.zeros(s)
                let gp = g.storage.pointer, dp = dx.storage.pointer
                CopyKernels.copy((0..<outer).map { o in
                    CopyKernels.Run(source: gp + o * rowCount, destination: dp + (o * extent + range.lowerBound) * inner, count: rowCount)
                })
                return [dx]
            }
        }
        return y
    }

    /// The central `height` x `width` window of the last two axes (U-Net's skip crop for valid padding).
    public func centerCropped(height: Int, width: Int) -> Tensor {
        precondition(rank >= 2, "centerCropped: needs at least 2 axes, got shape \(shape)")
        let h = shape[rank - 2], w = shape[rank - 1]
        precondition(height <= h && width <= w && height >= 0 && width >= 0,
                     "centerCropped: \(height)x\(width) does not fit in shape \(shape)")
        let top = (h - height) / 2, left = (w - width) / 2
        return slice(alongAxis: rank - 2, top..<(top + height)).slice(alongAxis: rank - 1, left..<(left + width))
    }

    /// Joins tensors along `axis`; all other extents must agree.
    public static func concatenate(_ tensors: [Tensor], alongAxis axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concatenate: no tensors")
        let first = tensors[0]
        let a = first.normalizedAxis(axis, "concatenate")
        for t in tensors {
            var s1 = t.shape, s0 = first.shape
            precondition(s1.count == s0.count, "concatenate: shapes \(s0) and \(s1) differ in rank")
            s1[a] = 0; s0[a] = 0
            precondition(s1 == s0, "concatenate: shapes \(first.shape) and \(t.shape) differ outside axis \(a)")
        }
        var outShape = first.shape
        outShape[a] = tensors.reduce(0) { $0 + $1.shape[a] }
        let outer = first.shape[..<a].reduce(1, *)
        let inner = first.shape[(a + 1)...].reduce(1, *)
        var y = Tensor(uninitializedShape: outShape)
        let p = y.storage.pointer
        let outRow = outShape[a] * inner
        OpProfiler.measure(.concatCropForward) {
        var offset = 0
        var runs: [CopyKernels.Run] = []
        for t in tensors {
            let row = t.shape[a] * inner
            let x = t.storage.pointer
            for o in 0..<outer { runs.append(CopyKernels.Run(source: x + o * row, destination: p + o * outRow + offset, count: row)) }
            offset += row
        }
        CopyKernels.copy(runs)
        }
        if let needs = gradientNeeds(tensors) {
            let extents = tensors.map { $0.shape[a] }
            var starts: [Int] = []
            var s = 0
            for e in extents { starts.append(s); s += e }
            y.recordOp("concatenate", profiledAs: .concatCropBackward, inputs: tensors) { g in
                (0..<tensors.count).map { i in needs[i] ? g.detached.slice(alongAxis: a, starts[i]..<(starts[i] + extents[i])) : nil }
            }
        }
        return y
    }

    /// Which of `inputs` need gradients, or nil when nothing should be recorded.
    public static func gradientNeeds(_ inputs: [Tensor]) -> [Bool]? {
        let needs = inputs.map { $0.node != nil }
        return needs.contains(true) && GradientMode.isEnabled ? needs : nil
    }
}

/// How `padded` fills the border.
public enum PaddingMode: Sendable {
    /// Zeros.
    case zero
    /// Mirror without repeating the edge (numpy "reflect": ... c b | a b c | b a ...).
    case reflect
}

extension Tensor {
    /// Pads the last two axes by `top`, `bottom`, `left`, `right` elements.
    /// Reflect padding needs each pad smaller than the extent it mirrors.
    public func padded(top: Int, bottom: Int, left: Int, right: Int, mode: PaddingMode = .zero) -> Tensor {
        precondition(rank >= 2, "padded: needs at least 2 axes, got shape \(shape)")
        precondition(Swift.min(top, bottom, left, right) >= 0, "padded: negative padding \(top),\(bottom),\(left),\(right)")
        let h = shape[rank - 2], w = shape[rank - 1]
        if mode == .reflect {
            precondition(Swift.max(top, bottom) < h && Swift.max(left, right) < w,
                         "padded(.reflect): padding \(top),\(bottom),\(left),\(right) must be smaller than \(h)x\(w)")
        }
        let oh = h + top + bottom, ow = w + left + right
        var outShape = shape
        outShape[rank - 2] = oh; outShape[rank - 1] = ow
        let planes = count / Swift.max(h * w, 1)
        // Source index for each output row/column; -1 = zero.
        func source(_ i: Int, _ before: Int, _ n: Int) -> Int {
            let s = i - before
            if s >= 0 && s < n { return s }
            if mode == .zero { return -1 }
            return s < 0 ? -s : 2 * (n - 1) - s
        }
        let rows = (0..<oh).map { source($0, top, h) }
        let cols = (0..<ow).map { source($0, left, w) }
        var y = Tensor(uninitializedShape: outShape)
        let x = storage.pointer, p = y.storage.pointer
        for plane in 0..<planes {
            let src = x + plane * h * w, dst = p + plane * oh * ow
            for (r, sr) in rows.enumerated() {
                let d = dst + r * ow
                if sr < 0 { d.update(repeating: 0, count: ow); continue }
                let s = src + sr * w
                for (c, sc) in cols.enumerated() { d[c] = sc < 0 ? 0 : s[sc] }
            }
        }
        if Tensor.gradientNeeds(self) != nil {
            let s = shape
            y.recordOp("pad", profiledAs: .concatCropBackward, inputs: [self]) { g in
                let dx = Tensor.zeros(s)
                let gp = g.storage.pointer, dp = dx.storage.pointer
                for plane in 0..<planes {
                    let gsrc = gp + plane * oh * ow, d = dp + plane * h * w
                    for (r, sr) in rows.enumerated() where sr >= 0 {
                        for (c, sc) in cols.enumerated() where sc >= 0 { d[sr * w + sc] += gsrc[r * ow + c] }
                    }
                }
                return [dx]
            }
        }
        return y
    }
}
