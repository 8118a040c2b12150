/// The heap buffer behind a `Tensor`: `count` Float32 values, 64-byte aligned so SIMD loads and BLAS
/// panels never straddle cache lines. Owned by exactly one final class; `Tensor` copies it on write.
public final class TensorStorage {
    /// Start of the buffer. Valid for `count` elements for the lifetime of this object.
    public let pointer: UnsafeMutablePointer<Float>
    /// Number of Float32 elements.
    public let count: Int

    /// Allocates uninitialized storage; callers must write every element before reading.
    public init(uninitializedCount count: Int) {
        precondition(count >= 0, "TensorStorage: negative element count \(count)")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride,
                                                   alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    /// Allocates storage filled with `value`.
    public convenience init(count: Int, repeating value: Float) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: value, count: count)
    }

    /// A new storage holding the same values.
    public func copy() -> TensorStorage {
        let result = TensorStorage(uninitializedCount: count)
        result.pointer.update(from: pointer, count: count)
        return result
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}
