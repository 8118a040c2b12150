extension Tensor {
    /// Gives `body` this leaf's accumulated gradient to change in place, for example to sum it over
    /// the processes of a data-parallel job. Returns nil without calling `body` when the leaf has no
    /// gradient yet (no `backward()` reached it since the last `zeroGradient()`) or is not a leaf.
    public func withMutableGradient<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R? {
        try node?.withMutableGradient(body)
    }
}
