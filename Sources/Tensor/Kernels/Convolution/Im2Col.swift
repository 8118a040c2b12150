/// im2col and its exact adjoint col2im, over one image and a range of its output pixels.
///
/// Columns of a block of output pixels `p0..<p1` (pixels counted row-major over the output plane)
/// form a `[C*kh*kw, p1-p0]` row-major matrix with row stride `stride` (>= p1-p0): row `(c*kh + ky)*kw + kx`, column `p - p0` holds the
/// input value under kernel tap `(ky, kx)` of channel `c` for output pixel `p`, or 0 in the padding.
/// Loops run channel, kernel row, kernel column, then output rows, as in Caffe's im2col.cpp; the valid
/// span of each output row is computed once, so the inner loops are a zero fill and a copy (`memcpy`
/// for stride 1) with no per-element bounds test.
///
/// `col2im` adds every column entry back into the input position it came from (zeros of the padding
/// go nowhere), so `<im2col(x), c> == <x, col2im(c)>` exactly: it is the adjoint, used for the
/// gradient of the input.
enum Im2Col {
    /// The output columns `ox` in `lo..<hi` whose input column `ox*stride + offset` lies in `0..<width`.
    @inline(__always)
    static func validSpan(offset: Int, stride: Int, width: Int, outWidth: Int) -> (lo: Int, hi: Int) {
        let lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride
        let last = width - 1 - offset
        let hi = last < 0 ? 0 : Swift.min(outWidth, last / stride + 1)
        return (Swift.min(lo, hi), hi)
    }

    /// One run of a column-matrix row within one output row, as `forEachSegment` visits them: the
    /// `count` entries from offset `column` of the column matrix are `lead` entries from the
    /// padding, then `valid` entries from the input (the first at offset `input` of the image, the
    /// next ones `stride` apart), then `count - lead - valid` more from the padding.
    struct Segment {
        var column: Int
        var count: Int
        var lead: Int
        var valid: Int
        var input: Int
    }

    /// Calls `body` for every segment of the column-matrix rows of channels `channels` for output
    /// pixels `pixels` (row stride `ld`): channel, kernel row, kernel column, then output rows. The
    /// traversal `im2col` and its adjoint `col2im` share.
    @inline(__always)
    static func forEachSegment(_ g: ConvGeometry, pixels: Range<Int>, channels: Range<Int>, stride ld: Int,
                               _ body: (Segment) -> Void) {
        let kh = g.kernelHeight, kw = g.kernelWidth, s = g.stride, d = g.dilation
        let h = g.height, w = g.width, outW = g.outWidth
        for c in channels {
            let plane = c * h * w
            for ky in 0..<kh {
                let offY = ky * d - g.padTop
                for kx in 0..<kw {
                    let offX = kx * d - g.padLeft
                    let (lo, hi) = validSpan(offset: offX, stride: s, width: w, outWidth: outW)
                    var column = ((c * kh + ky) * kw + kx) * ld
                    var p = pixels.lowerBound
                    while p < pixels.upperBound {
                        let oy = p / outW
                        let oxStart = p - oy * outW
                        let oxEnd = Swift.min(outW, oxStart + (pixels.upperBound - p))
                        let count = oxEnd - oxStart
                        let iy = oy * s + offY
                        if iy < 0 || iy >= h {
                            body(Segment(column: column, count: count, lead: count, valid: 0, input: 0))
                        } else {
                            let a = Swift.min(Swift.max(lo, oxStart), oxEnd)
                            let b = Swift.min(Swift.max(hi, a), oxEnd)
                            body(Segment(column: column, count: count, lead: a - oxStart, valid: b - a,
                                         input: plane + iy * w + offX + a &* s))
                        }
                        column += count
                        p += count
                    }
                }
            }
        }
    }

    /// Fills the rows of channels `channels` of the column matrix of output pixels `pixels` of one
    /// image. `x` is the image `[C, H, W]`; `col` is the block's matrix base (row 0, column 0) with
    /// row stride `ld` (at least `pixels.count`). Not inlined into callers: on its own the optimizer
    /// inlines the segment body into `forEachSegment`'s loop, while inlined into a kernel it kept the
    /// body out of line with one call per segment.
    @inline(never)
    static func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, pixels: Range<Int>, channels: Range<Int>,
                       into col: UnsafeMutablePointer<Float>, stride ld: Int) {
        let s = g.stride
        if s == 1 && g.outWidth == g.width {
            im2colRowPreserving(x, g, pixels: pixels, channels: channels, into: col, stride: ld)
            return
        }
        forEachSegment(g, pixels: pixels, channels: channels, stride: ld) { segment in
            let dst = col + segment.column
            let end = segment.lead + segment.valid
            if segment.lead > 0 { dst.update(repeating: 0, count: segment.lead) }
            if end < segment.count { (dst + end).update(repeating: 0, count: segment.count - end) }
            guard segment.valid > 0 else { return }
            let src = x + segment.input, out = dst + segment.lead
            if s == 1 {
                out.update(from: src, count: segment.valid)
            } else if s == 2 {
                gatherEven(src, into: out, count: segment.valid)
            } else {
                for i in 0..<segment.valid { out[i] = src[i &* s] }
            }
        }
    }

    /// im2col for stride 1 with output rows as wide as input rows (a "same" convolution): tap
    /// `(ky, kx)` of output pixel `p` reads input pixel `p + offY*W + offX` of the flattened plane,
    /// so each column row is one contiguous copy (zero outside the plane), after which the entries
    /// whose input column fell off the row's left or right edge are zeroed. One `memmove` per
    /// kernel tap instead of one per tap and output row.
    static func im2colRowPreserving(_ x: UnsafePointer<Float>, _ g: ConvGeometry, pixels: Range<Int>, channels: Range<Int>,
                                    into col: UnsafeMutablePointer<Float>, stride ld: Int) {
        let kh = g.kernelHeight, kw = g.kernelWidth, d = g.dilation
        let w = g.width, planeSize = g.height * w
        let p0 = pixels.lowerBound, n = pixels.count
        let firstRowStart = p0 / w * w
        for c in channels {
            let plane = x + c * planeSize
            for ky in 0..<kh {
                let offY = ky * d - g.padTop
                for kx in 0..<kw {
                    let offX = kx * d - g.padLeft
                    let dst = col + ((c * kh + ky) * kw + kx) * ld
                    let start = p0 + offY * w + offX
                    // Entries [0, a) fall before the plane, [b, n) after it.
                    let a = Swift.min(n, Swift.max(0, -start))
                    let b = Swift.max(a, Swift.min(n, planeSize - start))
                    if a > 0 { dst.update(repeating: 0, count: a) }
                    if b > a { (dst + a).update(from: plane + start + a, count: b - a) }
                    if b < n { (dst + b).update(repeating: 0, count: n - b) }
                    // Output columns [0, lo) and [hi, W) read across a row edge: zero them per row.
                    let (lo, hi) = validSpan(offset: offX, stride: 1, width: w, outWidth: w)
                    if lo == 0 && hi == w { continue }
                    var rowStart = firstRowStart
                    while rowStart < pixels.upperBound {
                        for ox in 0..<lo where pixels.contains(rowStart + ox) { dst[rowStart + ox - p0] = 0 }
                        for ox in hi..<w where pixels.contains(rowStart + ox) { dst[rowStart + ox - p0] = 0 }
                        rowStart += w
                    }
                }
            }
        }
    }

    /// `out[i] = src[2 * i]` for `i < count`: 8 outputs per 16-float load (the even lanes), so
    /// stride-2 convolutions (the U-Net's k2 s2 up-convolutions in backward) gather at copy speed.
    @inline(__always)
    static func gatherEven(_ src: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        let raw = UnsafeRawPointer(src), dst = UnsafeMutableRawPointer(out)
        // The last full load reads src[2i ..< 2i + 16]; src[2 * (count - 1)] is the last valid element.
        while i &+ 8 < count {
            let v = raw.loadUnaligned(fromByteOffset: i &* 8, as: SIMD16<Float>.self)
            dst.storeBytes(of: v.evenHalf, toByteOffset: i &* 4, as: SIMD8<Float>.self)
            i &+= 8
        }
        while i < count { out[i] = src[2 &* i]; i &+= 1 }
    }

    /// Adds the rows of channels `channels` of a block's column matrix into the image `dx` `[C, H, W]`
    /// (the adjoint of `im2col` with the same arguments). Distinct channel ranges write disjoint memory.
    /// Not inlined into callers, like `im2col`.
    @inline(never)
    static func col2im(_ col: UnsafePointer<Float>, _ g: ConvGeometry, pixels: Range<Int>, channels: Range<Int>,
                       stride ld: Int, into dx: UnsafeMutablePointer<Float>) {
        let s = g.stride
        forEachSegment(g, pixels: pixels, channels: channels, stride: ld) { segment in
            guard segment.valid > 0 else { return }
            let first = dx + segment.input, from = col + segment.column + segment.lead
            if s == 1 {
                for i in 0..<segment.valid { first[i] += from[i] }
            } else {
                for i in 0..<segment.valid { first[i &* s] += from[i] }
            }
        }
    }
}
