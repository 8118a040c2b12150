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

    /// Fills the rows of channels `channels` of the column matrix of output pixels `pixels` of one
    /// image. `x` is the image `[C, H, W]`; `col` is the block's matrix base (row 0, column 0) with
    /// row stride `ld` (at least `pixels.count`).
    static func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, pixels: Range<Int>, channels: Range<Int>,
                       into col: UnsafeMutablePointer<Float>, stride ld: Int) {
        let kh = g.kernelHeight, kw = g.kernelWidth, s = g.stride, d = g.dilation
        let h = g.height, w = g.width, outW = g.outWidth
        if s == 1 && outW == w {
            im2colRowPreserving(x, g, pixels: pixels, channels: channels, into: col, stride: ld)
            return
        }
        for c in channels {
            let plane = x + c * h * w
            for ky in 0..<kh {
                let offY = ky * d - g.padTop
                for kx in 0..<kw {
                    let offX = kx * d - g.padLeft
                    let (lo, hi) = validSpan(offset: offX, stride: s, width: w, outWidth: outW)
                    var dst = col + ((c * kh + ky) * kw + kx) * ld
                    var p = pixels.lowerBound
                    while p < pixels.upperBound {
                        let oy = p / outW
                        let oxStart = p - oy * outW
                        let oxEnd = Swift.min(outW, oxStart + (pixels.upperBound - p))
                        let count = oxEnd - oxStart
                        let iy = oy * s + offY
                        if iy < 0 || iy >= h {
                            dst.update(repeating: 0, count: count)
                        } else {
                            let a = Swift.min(Swift.max(lo, oxStart), oxEnd)
                            let b = Swift.min(Swift.max(hi, a), oxEnd)
                            if a > oxStart { dst.update(repeating: 0, count: a - oxStart) }
                            if b < oxEnd { (dst + (b - oxStart)).update(repeating: 0, count: oxEnd - b) }
                            if b > a {
                                let src = plane + iy * w + offX
                                let out = dst + (a - oxStart)
                                if s == 1 {
                                    out.update(from: src + a, count: b - a)
                                } else if s == 2 {
                                    gatherEven(src + 2 &* a, into: out, count: b - a)
                                } else {
                                    let first = src + a &* s
                                    for i in 0..<(b - a) { out[i] = first[i &* s] }
                                }
                            }
                        }
                        dst += count
                        p += count
                    }
                }
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
    static func col2im(_ col: UnsafePointer<Float>, _ g: ConvGeometry, pixels: Range<Int>, channels: Range<Int>,
                       stride ld: Int, into dx: UnsafeMutablePointer<Float>) {
        let kh = g.kernelHeight, kw = g.kernelWidth, s = g.stride, d = g.dilation
        let h = g.height, w = g.width, outW = g.outWidth
        for c in channels {
            let plane = dx + c * h * w
            for ky in 0..<kh {
                let offY = ky * d - g.padTop
                for kx in 0..<kw {
                    let offX = kx * d - g.padLeft
                    let (lo, hi) = validSpan(offset: offX, stride: s, width: w, outWidth: outW)
                    var src = col + ((c * kh + ky) * kw + kx) * ld
                    var p = pixels.lowerBound
                    while p < pixels.upperBound {
                        let oy = p / outW
                        let oxStart = p - oy * outW
                        let oxEnd = Swift.min(outW, oxStart + (pixels.upperBound - p))
                        let count = oxEnd - oxStart
                        let iy = oy * s + offY
                        if iy >= 0 && iy < h {
                            let a = Swift.min(Swift.max(lo, oxStart), oxEnd)
                            let b = Swift.min(Swift.max(hi, a), oxEnd)
                            if b > a {
                                let first = plane + iy * w + offX + a &* s
                                let from = src + (a - oxStart)
                                if s == 1 {
                                    for i in 0..<(b - a) { first[i] += from[i] }
                                } else {
                                    for i in 0..<(b - a) { first[i &* s] += from[i] }
                                }
                            }
                        }
                        src += count
                        p += count
                    }
                }
            }
        }
    }
}
