/// 2.5D context: a network that segments slice z of a stack from slices z-N ... z+N, stacked as
/// 2N+1 input channels. At the stack's ends the neighbours are mirrored without repeating the edge,
/// as the tiles are at the image borders: slice -1 is slice 1, slice n is slice n-2.
///
/// ```swift
/// SliceContext.indices(of: 0, radius: 2, pages: 30)     // [2, 1, 0, 1, 2]
/// let slices = SliceContext.attach(radius: 1, to: dataset.slices)   // contextImages filled in
/// ```
public enum SliceContext {
    /// The pages whose images feed slice `z` of a stack of `pages` pages, in channel order
    /// (z-N ... z+N), mirrored at the ends (periodically, so any radius works).
    public static func indices(of z: Int, radius: Int, pages: Int) -> [Int] {
        precondition(pages >= 1 && radius >= 0 && (0..<pages).contains(z), "SliceContext: slice \(z) of \(pages), radius \(radius)")
        return (z - radius...z + radius).map { mirrorIndex($0, pages) }
    }

    /// `slices` (a whole stack: indices 0 ..< count, in order) with `contextImages` set for `radius`
    /// slices on each side; unchanged when `radius` is 0. The images are shared, not copied.
    public static func attach(radius: Int, to slices: [EMSlice]) -> [EMSlice] {
        guard radius > 0 else { return slices }
        precondition(slices.enumerated().allSatisfy { $0.offset == $0.element.index },
                     "SliceContext.attach: the slices must be a whole stack in page order")
        return slices.map { slice in
            var s = slice
            s.contextImages = indices(of: slice.index, radius: radius, pages: slices.count).map { slices[$0].image }
            return s
        }
    }

    /// The planes stacked channel-major into one array of `planes.count * planes[0].count` values.
    public static func stacked(_ planes: [[Float]]) -> [Float] {
        planes.count == 1 ? planes[0] : planes.flatMap { $0 }
    }
}
