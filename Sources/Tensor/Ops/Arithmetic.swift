// Broadcasting arithmetic. Shapes follow numpy: axes align from the right, and an extent of 1
// stretches. The backward pass sums each gradient back to its input's shape.

extension Tensor {
    @inline(__always)
    static func binary<F: BinaryFunction>(_ op: String, _ a: Tensor, _ b: Tensor, _ f: F) -> Tensor {
        if a.shape == b.shape {
            let y = Tensor(uninitializedShape: a.shape)
            ElementwiseKernels.zip(a.storage.pointer, b.storage.pointer, y.storage.pointer, a.count, f)
            return y
        }
        guard let out = broadcastShape(a.shape, b.shape) else {
            preconditionFailure("\(op): shapes \(a.shape) and \(b.shape) cannot be broadcast together")
        }
        let y = Tensor(uninitializedShape: out)
        if b.count == 1 && out == a.shape {
            ElementwiseKernels.map(a.storage.pointer, y.storage.pointer, a.count, BindRight(f: f, s: b.storage.pointer[0]))
        } else if a.count == 1 && out == b.shape {
            ElementwiseKernels.map(b.storage.pointer, y.storage.pointer, b.count, BindLeft(f: f, s: a.storage.pointer[0]))
        } else {
            broadcastZip(a.storage.pointer, a.shape, b.storage.pointer, b.shape, y.storage.pointer, out, f)
        }
        return y
    }

    /// Sums a broadcast gradient back to `shape` (the inverse of broadcasting `shape` up to `self.shape`).
    public func summedToShape(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        let offset = rank - target.count
        precondition(offset >= 0, "summedToShape: cannot reduce \(shape) to \(target)")
        var axes: [Int] = Array(0..<offset)
        for (i, extent) in target.enumerated() where extent == 1 && shape[i + offset] != 1 { axes.append(i + offset) }
        return sum(alongAxes: axes, keepingDimensions: true).reshaped(to: target)
    }

    /// Elementwise sum with broadcasting.
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        var y = binary("+", a, b, AddFunction())
        if let needs = gradientNeeds(a, b) {
            let sa = a.shape, sb = b.shape
            y.recordOp("+", profiledAs: .elementwiseBackward, inputs: [a, b]) { g in
                [needs[0] ? g.summedToShape(sa) : nil, needs[1] ? g.summedToShape(sb) : nil]
            }
        }
        return y
    }

    /// Elementwise difference with broadcasting.
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        var y = binary("-", a, b, SubtractFunction())
        if let needs = gradientNeeds(a, b) {
            let sa = a.shape, sb = b.shape
            y.recordOp("-", profiledAs: .elementwiseBackward, inputs: [a, b]) { g in
                [needs[0] ? g.summedToShape(sa) : nil, needs[1] ? (-g).summedToShape(sb) : nil]
            }
        }
        return y
    }

    /// Elementwise product with broadcasting.
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        var y = binary("*", a, b, MultiplyFunction())
        if let needs = gradientNeeds(a, b) {
            let av = a.detached, bv = b.detached
            y.recordOp("*", profiledAs: .elementwiseBackward, inputs: [a, b]) { g in
                [needs[0] ? (g * bv).summedToShape(av.shape) : nil, needs[1] ? (g * av).summedToShape(bv.shape) : nil]
            }
        }
        return y
    }

    /// Elementwise quotient with broadcasting.
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        var y = binary("/", a, b, DivideFunction())
        if let needs = gradientNeeds(a, b) {
            let av = a.detached, bv = b.detached
            y.recordOp("/", profiledAs: .elementwiseBackward, inputs: [a, b]) { g in
                [needs[0] ? (g / bv).summedToShape(av.shape) : nil,
                 needs[1] ? (-(g * av) / (bv * bv)).summedToShape(bv.shape) : nil]
            }
        }
        return y
    }

    /// Adds a scalar to every element.
    public static func + (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1, shift: s) }
    /// Adds a scalar to every element.
    public static func + (s: Float, a: Tensor) -> Tensor { a.affine(scale: 1, shift: s) }
    /// Subtracts a scalar from every element.
    public static func - (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1, shift: -s) }
    /// Subtracts every element from a scalar.
    public static func - (s: Float, a: Tensor) -> Tensor { a.affine(scale: -1, shift: s) }
    /// Multiplies every element by a scalar.
    public static func * (a: Tensor, s: Float) -> Tensor { a.affine(scale: s, shift: 0) }
    /// Multiplies every element by a scalar.
    public static func * (s: Float, a: Tensor) -> Tensor { a.affine(scale: s, shift: 0) }
    /// Divides every element by a scalar.
    public static func / (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1 / s, shift: 0) }
    /// Divides a scalar by every element.
    public static func / (s: Float, a: Tensor) -> Tensor { Tensor(s) / a }
    /// Negates every element.
    public static prefix func - (a: Tensor) -> Tensor { a.affine(scale: -1, shift: 0) }

    /// Adds `other` (same shape) into this tensor's storage without recording on the tape.
    public mutating func addInPlace(_ other: Tensor) {
        precondition(shape == other.shape, "addInPlace: shapes \(shape) and \(other.shape) differ")
        let src = other.storage.pointer
        withUnsafeMutableBufferPointer { ElementwiseKernels.accumulate(src, into: $0.baseAddress!, $0.count) }
    }
}
