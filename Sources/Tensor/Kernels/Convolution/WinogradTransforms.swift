/// The tile size of Winograd's minimal filtering F(m x m, 3 x 3) (Lavin & Gray 2016): each tile of
/// `m x m` output pixels is computed from an `alpha x alpha` input tile (`alpha = m + 2`) with
/// `alpha^2` multiplications per input-output channel pair, instead of the `9 m^2` of the direct
/// convolution (F(2x2): 2.25x fewer, F(4x4): 4x fewer).
///
/// With `d` an input tile, `g` a 3x3 filter and the matrices below, the output tile is
/// `Y = A^T [(G g G^T) . (B^T d B)] A` (`.` element-wise). Summed over input channels, the
/// element-wise stage becomes `alpha^2` independent GEMMs (one per transform point).
package enum WinogradTile: Int, Sendable, CaseIterable, CustomStringConvertible {
    /// F(2x2, 3x3): 4x4 input tiles. Its transforms use only 0, +-1 and +-1/2: the output is
    /// nearly as accurate as the direct convolution.
    case f2 = 2
    /// F(4x4, 3x3): 6x6 input tiles, 4x fewer multiplications; the transforms scale by up to 8 and
    /// 1/24, which costs about an order of magnitude of float accuracy (still ~1e-5 relative).
    case f4 = 4

    /// Output pixels per tile side.
    package var m: Int { rawValue }
    /// Input pixels per tile side.
    package var alpha: Int { rawValue + 2 }
    /// Transform points: the number of GEMMs.
    package var points: Int { alpha * alpha }

    package var description: String { "winograd F(\(m)x\(m),3x3)" }

    /// The filter transform `G` (`alpha x 3`), row-major.
    var filterMatrix: [Double] {
        switch self {
        case .f2:
            return [1, 0, 0,
                    0.5, 0.5, 0.5,
                    0.5, -0.5, 0.5,
                    0, 0, 1]
        case .f4:
            return [1.0 / 4, 0, 0,
                    -1.0 / 6, -1.0 / 6, -1.0 / 6,
                    -1.0 / 6, 1.0 / 6, -1.0 / 6,
                    1.0 / 24, 1.0 / 12, 1.0 / 6,
                    1.0 / 24, -1.0 / 12, 1.0 / 6,
                    0, 0, 1]
        }
    }
}

/// The transforms of Winograd convolution as vectorised kernels over rows of tiles.
///
/// The data of a row of tiles is kept "tile-minor": value `(i, j)` of every tile of the row is one
/// contiguous vector indexed by the tile, so each 1-D transform is a handful of SIMD adds over
/// `alpha` such vectors, and the 2-D transforms are two passes of it (columns, then rows).
/// Vector lengths are multiples of 8 (callers round up and ignore the extra lanes).
enum WinogradTransforms {
    typealias Vector = SIMD8<Float>

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> Vector {
        UnsafeRawPointer(p).loadUnaligned(as: Vector.self)
    }

    @inline(__always)
    static func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self)
    }

    /// The 1-D input transform `v = B^T d` on `alpha` vectors: `d_k` at `src + k*srcStride`,
    /// `v_i` written to `dst + i*dstStride`, `count` (a multiple of 8) lanes each.
    static func input(_ tile: WinogradTile, _ src: UnsafePointer<Float>, srcStride s: Int,
                      _ dst: UnsafeMutablePointer<Float>, dstStride t: Int, count: Int) {
        switch tile {
        case .f2:
            var v = 0
            while v < count {
                let d0 = load(src + v), d1 = load(src + s + v), d2 = load(src + 2 * s + v), d3 = load(src + 3 * s + v)
                store(d0 - d2, dst + v)
                store(d1 + d2, dst + t + v)
                store(d2 - d1, dst + 2 * t + v)
                store(d1 - d3, dst + 3 * t + v)
                v &+= 8
            }
        case .f4:
            var v = 0
            while v < count {
                let d0 = load(src + v), d1 = load(src + s + v), d2 = load(src + 2 * s + v)
                let d3 = load(src + 3 * s + v), d4 = load(src + 4 * s + v), d5 = load(src + 5 * s + v)
                // B^T rows: [4 0 -5 0 1 0], [0 -4 -4 1 1 0], [0 4 -4 -1 1 0], [0 -2 -1 2 1 0],
                // [0 2 -1 -2 1 0], [0 4 0 -5 0 1].
                let a = d4 - 4 * d2, b = d3 - 4 * d1
                let c = d4 - d2, e = 2 * (d3 - d1)
                store(4 * d0 - 5 * d2 + d4, dst + v)
                store(a + b, dst + t + v)
                store(a - b, dst + 2 * t + v)
                store(c + e, dst + 3 * t + v)
                store(c - e, dst + 4 * t + v)
                store(4 * d1 - 5 * d3 + d5, dst + 5 * t + v)
                v &+= 8
            }
        }
    }

    /// The 1-D output transform `y = A^T m` on `alpha` vectors in, `m` vectors out (strides and
    /// `count` as in `input`).
    static func output(_ tile: WinogradTile, _ src: UnsafePointer<Float>, srcStride s: Int,
                       _ dst: UnsafeMutablePointer<Float>, dstStride t: Int, count: Int) {
        switch tile {
        case .f2:
            var v = 0
            while v < count {
                let m0 = load(src + v), m1 = load(src + s + v), m2 = load(src + 2 * s + v), m3 = load(src + 3 * s + v)
                store(m0 + m1 + m2, dst + v)
                store(m1 - m2 - m3, dst + t + v)
                v &+= 8
            }
        case .f4:
            var v = 0
            while v < count {
                let m0 = load(src + v), m1 = load(src + s + v), m2 = load(src + 2 * s + v)
                let m3 = load(src + 3 * s + v), m4 = load(src + 4 * s + v), m5 = load(src + 5 * s + v)
                // A^T rows: [1 1 1 1 1 0], [0 1 -1 2 -2 0], [0 1 1 4 4 0], [0 1 -1 8 -8 1].
                let a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4
                store(m0 + a + c, dst + v)
                store(b + 2 * d, dst + t + v)
                store(a + 4 * c, dst + 2 * t + v)
                store(b + 8 * d + m5, dst + 3 * t + v)
                v &+= 8
            }
        }
    }

    /// The filter transform of filters `filters` (indices `co * Cin + ci` of `weight`
    /// `[Cout, Cin, 3, 3]`): `U[p][f] = (G w_f G^T)[p]` for every transform point `p`, so that
    /// `U[p]` (`pointStride` floats apart) is the `[Cout, Cin]` operand of GEMM `p`. Runs over
    /// chunks of filters transposed to tap-major order, with the two matrix products as SIMD
    /// passes over the chunk.
    static func filters(_ tile: WinogradTile, _ weight: UnsafePointer<Float>, filters: Range<Int>, pointStride: Int,
                        into u: UnsafeMutablePointer<Float>) {
        let a = tile.alpha, gm = tile.filterMatrix.map { Float($0) }
        let chunk = 256
        withUnsafeTemporaryAllocation(of: Float.self, capacity: (9 + 3 * a) * chunk) { scratch in
            let taps = scratch.baseAddress!, temp = taps + 9 * chunk
            var f0 = filters.lowerBound
            while f0 < filters.upperBound {
                let count = Swift.min(chunk, filters.upperBound - f0)
                let lanes = (count + 7) / 8 * 8
                // taps[k][f] = w[f0 + f][k], zero past the chunk's end.
                for f in 0..<count {
                    let w = weight + (f0 + f) * 9
                    for k in 0..<9 { taps[k * chunk + f] = w[k] }
                }
                if lanes > count { for k in 0..<9 { (taps + k * chunk + count).update(repeating: 0, count: lanes - count) } }
                var v = 0
                while v < lanes {
                    // temp[i][l] = sum_k G[i][k] w[k][l]  (alpha x 3)
                    for i in 0..<a {
                        let g0 = gm[i * 3], g1 = gm[i * 3 + 1], g2 = gm[i * 3 + 2]
                        for l in 0..<3 {
                            let t = g0 * load(taps + l * chunk + v) + g1 * load(taps + (3 + l) * chunk + v)
                                + g2 * load(taps + (6 + l) * chunk + v)
                            store(t, temp + (i * 3 + l) * chunk + v)
                        }
                    }
                    v &+= 8
                }
                // U[i*a + j] = sum_l temp[i][l] G[j][l], written for the chunk's filters only.
                for i in 0..<a {
                    let t0 = temp + (i * 3) * chunk, t1 = t0 + chunk, t2 = t1 + chunk
                    for j in 0..<a {
                        let g0 = gm[j * 3], g1 = gm[j * 3 + 1], g2 = gm[j * 3 + 2]
                        let dst = u + (i * a + j) * pointStride + f0
                        var v = 0
                        while v + 8 <= count {
                            store(g0 * load(t0 + v) + g1 * load(t1 + v) + g2 * load(t2 + v), dst + v)
                            v &+= 8
                        }
                        while v < count { dst[v] = g0 * t0[v] + g1 * t1[v] + g2 * t2[v]; v &+= 1 }
                    }
                }
                f0 += count
            }
        }
    }
}
