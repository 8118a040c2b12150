/// Sub-pixel registration of probability maps, for test-time augmentation of models that learned an
/// offset of the labels against the images.
///
/// A model trained without flips can learn a consistent sub-pixel offset of the annotation (ISBI
/// 2012's labels sit about 0.6 px above and 0.25 px left of the membranes the images show). Flipped or
/// rotated inputs turn that offset around, so their predictions, mapped back, are shifted copies of
/// the plain prediction; averaging them unaligned blurs the membranes. Aligning each to the plain
/// prediction first keeps what the model learned.
///
/// Shifts follow one convention: `shifted(p, dy, dx)[y, x] = p[y - dy, x - dx]`, content moves by
/// (+dy, +dx); `estimateShift(of: m, onto: r)` returns the shift that moves `m` onto `r`.
public enum SubpixelAlignment {
    /// `plane` (`height x width`, row-major) with its content moved by (`dy`, `dx`) pixels, sampled
    /// bilinearly; positions outside repeat the nearest edge pixel.
    public static func shifted(_ plane: [Float], height: Int, width: Int, dy: Double, dx: Double) -> [Float] {
        precondition(plane.count == height * width && height > 0 && width > 0,
                     "SubpixelAlignment: \(plane.count) values for \(height)x\(width)")
        if dy == 0 && dx == 0 { return plane }
        var out = [Float](repeating: 0, count: plane.count)
        // Source position of output (y, x) is (y - dy, x - dx) = (y + iy + fy, x + ix + fx).
        let sy = -dy, sx = -dx
        let iy = Int(sy.rounded(.down)), ix = Int(sx.rounded(.down))
        let fy = Float(sy - Double(iy)), fx = Float(sx - Double(ix))
        plane.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    let y0 = min(max(y + iy, 0), height - 1), y1 = min(max(y + iy + 1, 0), height - 1)
                    let r0 = y0 * width, r1 = y1 * width
                    for x in 0..<width {
                        let x0 = min(max(x + ix, 0), width - 1), x1 = min(max(x + ix + 1, 0), width - 1)
                        let top = src[r0 + x0] + (src[r0 + x1] - src[r0 + x0]) * fx
                        let bottom = src[r1 + x0] + (src[r1 + x1] - src[r1 + x0]) * fx
                        dst[y * width + x] = top + (bottom - top) * fy
                    }
                }
            }
        }
        return out
    }

    /// The shift (`dy`, `dx`), in quarter pixels within +-`maxShift`, that brings `moving` closest to
    /// `reference` in mean squared difference over the pixels at least `maxShift + 1` from the edges:
    /// whole pixels first, then quarter pixels around the best whole-pixel shift. Returns (0, 0) for
    /// maps too small to compare.
    public static func estimateShift(of moving: [Float], onto reference: [Float], height: Int, width: Int,
                                     maxShift: Int = 2) -> (dy: Double, dx: Double) {
        precondition(moving.count == height * width && reference.count == moving.count,
                     "SubpixelAlignment: maps of \(moving.count) and \(reference.count) values for \(height)x\(width)")
        let border = maxShift + 1
        guard height > 2 * border + 2 && width > 2 * border + 2 else { return (0, 0) }
        func cost(_ dy: Double, _ dx: Double) -> Double {
            let s = shifted(moving, height: height, width: width, dy: dy, dx: dx)
            var sum = 0.0
            for y in border..<(height - border) {
                var row: Float = 0
                for x in border..<(width - border) {
                    let d = s[y * width + x] - reference[y * width + x]
                    row += d * d
                }
                sum += Double(row)
            }
            return sum
        }
        var best = (cost: cost(0, 0), dy: 0.0, dx: 0.0)
        for dy in -maxShift...maxShift { for dx in -maxShift...maxShift where dy != 0 || dx != 0 {
            let c = cost(Double(dy), Double(dx))
            if c < best.cost { best = (c, Double(dy), Double(dx)) }
        } }
        let (cy, cx) = (best.dy, best.dx)
        for qy in -3...3 { for qx in -3...3 where qy != 0 || qx != 0 {
            let dy = cy + Double(qy) / 4, dx = cx + Double(qx) / 4
            guard abs(dy) <= Double(maxShift) && abs(dx) <= Double(maxShift) else { continue }
            let c = cost(dy, dx)
            if c < best.cost { best = (c, dy, dx) }
        } }
        return (best.dy, best.dx)
    }
}
