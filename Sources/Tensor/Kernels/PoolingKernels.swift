/// Max-pooling loops over NCHW planes. No autodiff here: `maxPool2d` (Ops/Pooling.swift) calls them.
///
/// The forward pass records, for every output element, the offset of the winning input inside its
/// window (`ky * kernel + kx`) in one byte, so the backward pass needs neither the input nor a
/// full-size index tensor. The first maximum in row-major window order wins; a NaN wins over
/// numbers (and propagates), as in PyTorch.
enum PoolingKernels {
    /// Largest kernel whose window offsets fit in a byte.
    static let maximumKernelSize = 16

    /// Planes per parallel chunk so that a chunk holds at least ~64K elements.
    @inline(__always)
    static func planesPerChunk(_ planeSize: Int) -> Int { max(1, (1 << 16) / max(planeSize, 1)) }

    /// y[p, oy, ox] = max over the window at (oy * stride, ox * stride) of x[p]; argmax (if given)
    /// receives the winner's offset in the window. `planes` = N * C.
    static func maxPoolForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                               _ argmax: UnsafeMutablePointer<UInt8>?,
                               planes: Int, height h: Int, width w: Int, kernel k: Int, stride s: Int,
                               outputHeight oh: Int, outputWidth ow: Int) {
        Threads.parallelRanges(planes, minimumChunk: planesPerChunk(h * w)) { range in
            for p in range {
                let xp = x + p &* h &* w, yp = y + p &* oh &* ow
                let ap = argmax.map { $0 + p &* oh &* ow }
                if k == 2 && s == 2 {
                    forwardPlane2x2(xp, yp, ap, w: w, oh: oh, ow: ow)
                } else {
                    forwardPlane(xp, yp, ap, w: w, k: k, s: s, oh: oh, ow: ow)
                }
            }
        }
    }

    /// 2x2 stride 2: 16 windows at a time. Two 16-float loads per input row are split into the
    /// left and right columns of the windows (even and odd elements).
    @inline(__always)
    static func forwardPlane2x2(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                _ argmax: UnsafeMutablePointer<UInt8>?, w: Int, oh: Int, ow: Int) {
        for oy in 0..<oh {
            let r0 = x + (oy &* 2) &* w, r1 = r0 + w
            let yr = y + oy &* ow
            let ar = argmax.map { $0 + oy &* ow }
            var ox = 0
            while ox &+ 16 <= ow {
                let j = ox &* 2
                let t0 = VectorMath.load(r0 + j), t1 = VectorMath.load(r0 + (j &+ 16))
                let u0 = VectorMath.load(r1 + j), u1 = VectorMath.load(r1 + (j &+ 16))
                let a = Vector16(lowHalf: t0.evenHalf, highHalf: t1.evenHalf)
                let b = Vector16(lowHalf: t0.oddHalf, highHalf: t1.oddHalf)
                let c = Vector16(lowHalf: u0.evenHalf, highHalf: u1.evenHalf)
                let d = Vector16(lowHalf: u0.oddHalf, highHalf: u1.oddHalf)
                var m = a, index = SIMD16<Int32>()
                challenge(&m, &index, b, offset: 1)
                challenge(&m, &index, c, offset: 2)
                challenge(&m, &index, d, offset: 3)
                VectorMath.store(m, yr + ox)
                if let ar { storeWinners(index, ar + ox) }
                ox &+= 16
            }
            while ox < ow {
                let j = ox &* 2
                var m = r0[j], best = 0
                challenge(&m, &best, r0[j &+ 1], offset: 1)
                challenge(&m, &best, r1[j], offset: 2)
                challenge(&m, &best, r1[j &+ 1], offset: 3)
                yr[ox] = m
                ar?[ox] = UInt8(truncatingIfNeeded: best)
                ox &+= 1
            }
        }
    }

    /// Any kernel and stride. Strides 1 and 2 take 16 outputs at a time (plain or even-element
    /// loads); the rest of each row, and other strides, go one window at a time.
    @inline(__always)
    static func forwardPlane(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                             _ argmax: UnsafeMutablePointer<UInt8>?, w: Int, k: Int, s: Int, oh: Int, ow: Int) {
        for oy in 0..<oh {
            let rowBase = x + (oy &* s) &* w
            let yr = y + oy &* ow
            let ar = argmax.map { $0 + oy &* ow }
            var ox = 0
            if s <= 2 {
                // The stride-2 loads read 32 floats: keep them inside the row.
                while ox &+ 16 <= ow && ox &* s &+ 16 &* s &+ k <= w {
                    @inline(__always) func window(_ offset: Int) -> Vector16 {
                        let p = rowBase + (ox &* s &+ offset)
                        if s == 1 { return VectorMath.load(p) }
                        let lo = VectorMath.load(p), hi = VectorMath.load(p + 16)
                        return Vector16(lowHalf: lo.evenHalf, highHalf: hi.evenHalf)
                    }
                    var m = window(0), index = SIMD16<Int32>()
                    for ky in 0..<k {
                        for kx in 0..<k where ky != 0 || kx != 0 {
                            challenge(&m, &index, window(ky &* w &+ kx), offset: Int32(truncatingIfNeeded: ky &* k &+ kx))
                        }
                    }
                    VectorMath.store(m, yr + ox)
                    if let ar { storeWinners(index, ar + ox) }
                    ox &+= 16
                }
            }
            while ox < ow {
                let window = rowBase + ox &* s
                var m = window[0], best = 0
                for ky in 0..<k {
                    let row = window + ky &* w
                    for kx in 0..<k { challenge(&m, &best, row[kx], offset: ky &* k &+ kx) }
                }
                yr[ox] = m
                ar?[ox] = UInt8(truncatingIfNeeded: best)
                ox &+= 1
            }
        }
    }

    /// Where `v` beats the running maximum `m` (or is NaN), `v` becomes the maximum and `offset`
    /// (its place in the window) the winner: the first maximum in scan order wins, NaN wins over numbers.
    @inline(__always)
    static func challenge(_ m: inout Vector16, _ index: inout SIMD16<Int32>, _ v: Vector16, offset: Int32) {
        let take = (v .> m) .| (v .!= v)
        m.replace(with: v, where: take)
        index.replace(with: offset, where: take)
    }

    /// The scalar form of the vector `challenge`.
    @inline(__always)
    static func challenge(_ m: inout Float, _ best: inout Int, _ v: Float, offset: Int) {
        if v > m || v != v { m = v; best = offset }
    }

    /// Stores the winners' offsets of 16 windows as bytes at `argmax`.
    @inline(__always)
    static func storeWinners(_ index: SIMD16<Int32>, _ argmax: UnsafeMutablePointer<UInt8>) {
        UnsafeMutableRawPointer(argmax).storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: index), as: SIMD16<UInt8>.self)
    }

    /// dx = the scatter of g to each window's recorded winner (added where windows overlap; zero
    /// where no window covers an input element). Overwrites all of dx.
    static func maxPoolBackward(_ g: UnsafePointer<Float>, _ argmax: UnsafePointer<UInt8>,
                                _ dx: UnsafeMutablePointer<Float>,
                                planes: Int, height h: Int, width w: Int, kernel k: Int, stride s: Int,
                                outputHeight oh: Int, outputWidth ow: Int) {
        Threads.parallelRanges(planes, minimumChunk: planesPerChunk(h * w)) { range in
            for p in range {
                let gp = g + p &* oh &* ow, ap = argmax + p &* oh &* ow, dp = dx + p &* h &* w
                if k == 2 && s == 2 {
                    backwardPlane2x2(gp, ap, dp, h: h, w: w, oh: oh, ow: ow)
                } else {
                    backwardPlane(gp, ap, dp, h: h, w: w, k: k, s: s, oh: oh, ow: ow)
                }
            }
        }
    }

    /// Non-overlapping 2x2 windows: every covered element is written exactly once, the uncovered
    /// last row/column (odd sizes) is zeroed, so no separate clearing pass is needed.
    @inline(__always)
    static func backwardPlane2x2(_ g: UnsafePointer<Float>, _ argmax: UnsafePointer<UInt8>,
                                 _ dx: UnsafeMutablePointer<Float>, h: Int, w: Int, oh: Int, ow: Int) {
        for oy in 0..<oh {
            let r0 = dx + (oy &* 2) &* w, r1 = r0 + w
            let gr = g + oy &* ow, ar = argmax + oy &* ow
            var ox = 0
            while ox < ow {
                let v = gr[ox], i = ar[ox], j = ox &* 2
                r0[j] = i == 0 ? v : 0
                r0[j &+ 1] = i == 1 ? v : 0
                r1[j] = i == 2 ? v : 0
                r1[j &+ 1] = i == 3 ? v : 0
                ox &+= 1
            }
            let covered = ow &* 2
            if covered < w {
                (r0 + covered).update(repeating: 0, count: w &- covered)
                (r1 + covered).update(repeating: 0, count: w &- covered)
            }
        }
        let coveredRows = oh &* 2
        if coveredRows < h { (dx + coveredRows &* w).update(repeating: 0, count: (h &- coveredRows) &* w) }
    }

    @inline(__always)
    static func backwardPlane(_ g: UnsafePointer<Float>, _ argmax: UnsafePointer<UInt8>,
                              _ dx: UnsafeMutablePointer<Float>, h: Int, w: Int, k: Int, s: Int, oh: Int, ow: Int) {
        dx.update(repeating: 0, count: h &* w)
        withUnsafeTemporaryAllocation(of: Int.self, capacity: k &* k) { offsets in
            // Window offset -> element offset from the window's corner.
            for ky in 0..<k { for kx in 0..<k { offsets[ky &* k &+ kx] = ky &* w &+ kx } }
            let offsets = offsets.baseAddress!
            for oy in 0..<oh {
                let corner = dx + (oy &* s) &* w, gr = g + oy &* ow, ar = argmax + oy &* ow
                for ox in 0..<ow {
                    corner[ox &* s &+ offsets[Int(ar[ox])]] += gr[ox]
                }
            }
        }
    }
}
