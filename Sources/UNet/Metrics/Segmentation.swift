/// A labelling of a plane into segments: `labels[y * width + x]` is 0 for background (membrane or
/// boundary) and 1...`segmentCount` for the segment the pixel belongs to.
public struct Segmentation: Sendable, Equatable {
    /// Number of columns.
    public var width: Int
    /// Number of rows.
    public var height: Int
    /// Segment label per pixel, row-major; 0 = background.
    public var labels: [Int32]
    /// Number of segments (labels run from 1 to `segmentCount`).
    public var segmentCount: Int

    /// Wraps an existing labelling. Labels must be in 0...`segmentCount`
    /// (by default `segmentCount` is the largest label).
    public init(width: Int, height: Int, labels: [Int32], segmentCount: Int? = nil) {
        precondition(labels.count == width * height, "Segmentation: \(labels.count) labels for \(width) x \(height)")
        self.width = width
        self.height = height
        self.labels = labels
        self.segmentCount = segmentCount ?? Int(labels.max() ?? 0)
    }

    /// The 4-connected components of the pixels where `mask` is true (labels in raster order of
    /// each component's first pixel). O(pixels).
    public init(components4 mask: [Bool], width: Int, height: Int) {
        precondition(mask.count == width * height, "Segmentation: mask of \(mask.count) for \(width) x \(height)")
        var labels = [Int32](repeating: 0, count: width * height)
        var count: Int32 = 0
        mask.withUnsafeBufferPointer { m in
            labels.withUnsafeMutableBufferPointer { l in
                count = labelComponents4(width: width, height: height, isForeground: { m[$0] }, labels: l)
            }
        }
        self.init(width: width, height: height, labels: labels, segmentCount: Int(count))
    }

    /// Ground-truth segments: the 4-connected components of the cell pixels (class != 0) of `labels`.
    public init(cellsOf labels: LabelPlane) {
        var out = [Int32](repeating: 0, count: labels.count)
        var count: Int32 = 0
        labels.classes.withUnsafeBufferPointer { c in
            out.withUnsafeMutableBufferPointer { l in
                count = labelComponents4(width: labels.width, height: labels.height, isForeground: { c[$0] != 0 }, labels: l)
            }
        }
        self.init(width: labels.width, height: labels.height, labels: out, segmentCount: Int(count))
    }

    /// Number of pixels in each segment, indexed by label (index 0 counts the background).
    public var segmentSizes: [Int] {
        var sizes = [Int](repeating: 0, count: segmentCount + 1)
        for l in labels { sizes[Int(l)] += 1 }
        return sizes
    }
}

/// Labels the 4-connected components of the foreground into `labels` (which must hold zeros) and
/// returns their number. Iterative flood fill with an explicit stack: O(pixels), no recursion.
/// The predicate is evaluated once per pixel, up front.
@inline(__always)
func labelComponents4(width: Int, height: Int, isForeground: (Int) -> Bool,
                      labels: UnsafeMutableBufferPointer<Int32>) -> Int32 {
    let n = width * height
    if n == 0 { return 0 }
    let mask = UnsafeMutablePointer<Bool>.allocate(capacity: n)
    let stack = UnsafeMutablePointer<Int32>.allocate(capacity: n)
    defer { mask.deallocate(); stack.deallocate() }
    for i in 0..<n { mask[i] = isForeground(i) }
    let l = labels.baseAddress!
    var next: Int32 = 0
    for start in 0..<n where mask[start] && l[start] == 0 {
        next += 1
        l[start] = next
        stack[0] = Int32(start)
        var top = 1
        while top > 0 {
            top -= 1
            let p = Int(stack[top])
            let x = p % width
            if x > 0, mask[p - 1], l[p - 1] == 0 { l[p - 1] = next; stack[top] = Int32(p - 1); top += 1 }
            if x + 1 < width, mask[p + 1], l[p + 1] == 0 { l[p + 1] = next; stack[top] = Int32(p + 1); top += 1 }
            if p >= width, mask[p - width], l[p - width] == 0 { l[p - width] = next; stack[top] = Int32(p - width); top += 1 }
            if p + width < n, mask[p + width], l[p + width] == 0 { l[p + width] = next; stack[top] = Int32(p + width); top += 1 }
        }
    }
    return next
}
