/// A Float32 n-dimensional array: row-major, contiguous, NCHW for images.
///
/// `Tensor` is a value: assigning it or passing it shares storage until one side mutates, which then
/// copies (copy-on-write). A tensor that requires a gradient carries a node of the autodiff tape;
/// ops on it record how to send gradients back (see `backward()`).
///
/// ```swift
/// let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6]).requiringGradient()
/// let loss = (x * x).sum()
/// loss.backward()
/// print(x.gradient!)   // 2 * x
/// ```
public struct Tensor {
    /// The extent of each axis. Empty for a scalar tensor.
    public private(set) var shape: [Int]
    @usableFromInline var storage: TensorStorage
    @usableFromInline var node: AutodiffNode?

    /// Wraps existing storage; `storage.count` must equal the product of `shape`.
    public init(shape: [Int], storage: TensorStorage) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative extent in shape \(shape)")
        precondition(Tensor.elementCount(shape) == storage.count,
                     "Tensor: shape \(shape) needs \(Tensor.elementCount(shape)) elements, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
        self.node = nil
    }

    /// A tensor of `shape` whose elements are undefined until written (for kernels that fill every element).
    public init(uninitializedShape shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(uninitializedCount: Tensor.elementCount(shape)))
    }

    /// A tensor of `shape` holding `scalars` in row-major order.
    public init(shape: [Int], scalars: [Float]) {
        precondition(Tensor.elementCount(shape) == scalars.count,
                     "Tensor(shape:scalars:): shape \(shape) needs \(Tensor.elementCount(shape)) scalars, got \(scalars.count)")
        self.init(uninitializedShape: shape)
        scalars.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: $0.count) }
    }

    /// A tensor of `shape` with every element equal to `value`.
    public init(repeating value: Float, shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(count: Tensor.elementCount(shape), repeating: value))
    }

    /// A scalar (rank-0) tensor.
    public init(_ value: Float) { self.init(repeating: value, shape: []) }

    /// Zeros of `shape`.
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(repeating: 0, shape: shape) }
    /// Ones of `shape`.
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(repeating: 1, shape: shape) }

    /// Samples from a normal distribution with the given mean and standard deviation.
    public static func randomNormal(_ shape: [Int], mean: Float = 0, standardDeviation: Float = 1,
                                    generator: inout SeededGenerator) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        let p = t.storage.pointer
        for i in 0..<t.count { p[i] = mean + standardDeviation * Float(generator.nextNormal()) }
        t.node = nil
        return t
    }

    /// Samples uniformly from `[lowerBound, upperBound)`.
    public static func randomUniform(_ shape: [Int], lowerBound: Float = 0, upperBound: Float = 1,
                                     generator: inout SeededGenerator) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        let p = t.storage.pointer
        let span = upperBound - lowerBound
        for i in 0..<t.count { p[i] = lowerBound + span * generator.nextUnitFloat() }
        return t
    }

    /// The number of elements.
    @inlinable public var count: Int { storage.count }
    /// The number of axes.
    @inlinable public var rank: Int { shape.count }

    /// The elements in row-major order.
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }

    /// The single element of a tensor with one element.
    public var scalar: Float {
        precondition(count == 1, "Tensor.scalar: tensor of shape \(shape) has \(count) elements, expected 1")
        return storage.pointer[0]
    }

    /// Product of the extents in `shape`.
    @inlinable public static func elementCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    /// Calls `body` with the elements for reading.
    @inlinable public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: count))
    }

    /// Calls `body` with the elements for writing, first copying the storage if it is shared.
    /// Writing through the pointer bypasses autodiff: the tape does not see the change.
    @inlinable public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: count))
    }

    /// Reads or writes one element by its multi-index.
    public subscript(_ index: Int...) -> Float {
        get { storage.pointer[flatIndex(index)] }
        set {
            let i = flatIndex(index)
            withUnsafeMutableBufferPointer { $0[i] = newValue }
        }
    }

    func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == rank, "Tensor subscript: \(index.count) indices for shape \(shape)")
        var flat = 0
        for (axis, i) in index.enumerated() {
            precondition(i >= 0 && i < shape[axis], "Tensor subscript: index \(index) out of range for shape \(shape)")
            flat = flat * shape[axis] + i
        }
        return flat
    }

    /// The same tensor (sharing storage) detached from the tape: gradients do not flow through it.
    public var detached: Tensor {
        var t = self
        t.node = nil
        return t
    }

    /// Changes the shape without moving data. Used by ops that know the element count is unchanged.
    @usableFromInline mutating func setShapeUnchecked(_ newShape: [Int]) { shape = newShape }

    /// The four extents of an NCHW tensor; stops with a message naming `op` otherwise.
    public func shape4(_ op: String) -> (n: Int, c: Int, h: Int, w: Int) {
        precondition(rank == 4, "\(op): expected a 4-D NCHW tensor, got shape \(shape)")
        return (shape[0], shape[1], shape[2], shape[3])
    }
}

extension Tensor: CustomStringConvertible {
    /// A short description: shape and up to the first 8 elements.
    public var description: String {
        let shown = scalars.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 8 ? ", ..." : "")])"
    }
}

extension Tensor {
    /// True when shapes are equal and every element differs by at most `tolerance`.
    public func isApproximatelyEqual(to other: Tensor, tolerance: Float = 1e-5) -> Bool {
        guard shape == other.shape else { return false }
        let a = storage.pointer, b = other.storage.pointer
        for i in 0..<count where !(abs(a[i] - b[i]) <= tolerance) { return false }
        return true
    }

    /// The largest absolute elementwise difference to a tensor of the same shape.
    public func maxAbsoluteDifference(to other: Tensor) -> Float {
        precondition(shape == other.shape, "maxAbsoluteDifference: shapes \(shape) and \(other.shape) differ")
        let a = storage.pointer, b = other.storage.pointer
        var m: Float = 0
        for i in 0..<count { m = Swift.max(m, abs(a[i] - b[i])) }
        return m
    }
}
