/// The weight gradient of a stride-1 3x3 convolution by Winograd's algorithm: the adjoint of
/// `WinogradConvolution.forward` with respect to the filters.
///
/// The forward computes `M[p] = U[p] . V[p]` and `y = A^T M A` per tile, with `U = G w G^T`. Its
/// adjoint, for the output gradient `dy`:
/// 1. output-gradient transform `W[p][co][t] = (A dy_{co,t} A^T)[p]` (the `m x m` gradient tile,
///    zero past the output's edge, spread to `alpha x alpha` points);
/// 2. `alpha^2` GEMMs `dU[p][Cout, Cin] += W[p][Cout, T] . V[p][Cin, T]^T`, summed over every
///    block of tiles (the input transform `V` is the forward's);
/// 3. filter-gradient transform `dw = G^T dU G` (`alpha x alpha` to 3x3).
/// For F(4x4) this is 2.25 / 9 of the multiply-adds of the im2col weight gradient in step 2.
///
/// Threads as in the forward: lanes each sum their blocks into their own `dU` (added in lane
/// order at the end, so the result depends only on the thread count), or blocks one after
/// another with the transforms split over channels and the GEMMs over transform points.
extension WinogradConvolution {
    /// `weightGradient = sum over images and pixels of dY . col^T` (overwritten; see
    /// `ConvolutionKernels.backwardWeight`); false when the workspace limit cannot hold the
    /// per-lane filter gradients and one tile row (the caller then takes the exact paths).
    static func backwardWeight(_ g: ConvGeometry, tile: WinogradTile, input: UnsafePointer<Float>,
                               outputGradient: UnsafePointer<Float>, weightGradient dw: UnsafeMutablePointer<Float>,
                               parallelism: ConvolutionPolicy.Parallelism) -> Bool {
        precondition(eligible(g), "WinogradConvolution.backwardWeight: not a stride-1 3x3 convolution: \(g)")
        guard let p = plan(g, tile: tile, parallelism: parallelism, filtersPerLane: true) else { return false }
        let cin = g.inChannels, cout = g.outChannels, points = tile.points
        let inImage = cin * g.inPixels, outImage = cout * g.outPixels
        let laneStride = p.filterFloats + p.laneFloats
        ConvolutionWorkspace.withBuffer(floats: p.lanes * laneStride) { ws in
            let firstOfLane = (0..<p.lanes).map { lane in lane * p.items / p.lanes }
            ConvolutionKernels.run(ConvolutionKernels.Schedule(
                block: 0, blocksPerImage: p.blocksPerImage, items: p.items, lanes: p.lanes,
                splitsOverThreads: p.splitsOverThreads, laneFloats: p.laneFloats)) { item, lane in
                let (image, rows) = p.block(item)
                let tiles = rows.count * p.tilesX
                let du = ws + lane * laneStride
                let v = du + p.filterFloats
                let wBuffer = v + points * cin * p.ld
                forRanges(cin, split: p.splitsOverThreads) { channels in
                    transformInput(p, image: input + image * inImage, tileRows: rows, channels: channels, into: v)
                }
                forRanges(cout, split: p.splitsOverThreads) { outputs in
                    transformOutputGradient(p, outputGradient + image * outImage, tileRows: rows, outputs: outputs,
                                            into: wBuffer)
                }
                let beta: Float = item == firstOfLane[lane] ? 0 : 1
                forRanges(points, split: p.splitsOverThreads) { range in
                    for point in range {
                        Gemm.sgemm(transposeB: true, m: cout, n: cin, k: tiles, a: wBuffer + point * cout * p.ld, lda: p.ld,
                                   b: v + point * cin * p.ld, ldb: p.ld, beta: beta, c: du + point * cout * cin, ldc: cin)
                    }
                }
            }
            let lanes = ConvolutionKernels.lanesWithItems(lanes: p.lanes, items: p.items)
            ConvolutionKernels.addPartials(lanes.dropFirst().map { ws + $0 * laneStride }, into: ws, count: p.filterFloats)
            forRanges(cout * cin, split: cout * cin >= 4096) { filters in
                WinogradTransforms.filterGradients(tile, UnsafePointer(ws), pointStride: cout * cin, filters: filters, into: dw)
            }
        }
        return true
    }

    /// `W[point][co][t] = (A dy_{co,t} A^T)[point]` for output channels `outputs` and the tiles of
    /// `tileRows` of one image's output gradient `dy` `[Cout, outH, outW]`, with point stride
    /// `Cout * ld` (the layout of the forward's `M`).
    static func transformOutputGradient(_ p: Plan, _ dy: UnsafePointer<Float>, tileRows: Range<Int>, outputs: Range<Int>,
                                        into w: UnsafeMutablePointer<Float>) {
        let g = p.g, tile = p.tile, a = tile.alpha, m = tile.m, n = p.vectorLength, tilesX = p.tilesX
        let pointStride = g.outChannels * p.ld
        let outW = g.outWidth, outH = g.outHeight
        let fullTiles = outW / m
        withUnsafeTemporaryAllocation(of: Float.self, capacity: (m * m + a * m) * n) { scratch in
            let d = scratch.baseAddress!, e = d + m * m * n
            for co in outputs {
                let plane = dy + co * g.outPixels
                for ty in tileRows {
                    // d[r][s][tx] = dy[ty*m + r][tx*m + s], zero past the edges and past the last tile.
                    for r in 0..<m {
                        let dr = d + r * m * n
                        let oy = ty * m + r
                        if oy >= outH {
                            dr.update(repeating: 0, count: m * n)
                            continue
                        }
                        let row = plane + oy * outW
                        if m == 4 {
                            let d0 = dr, d1 = dr + n, d2 = dr + 2 * n, d3 = dr + 3 * n
                            for tx in 0..<fullTiles {
                                let s = row + tx &* 4
                                d0[tx] = s[0]; d1[tx] = s[1]; d2[tx] = s[2]; d3[tx] = s[3]
                            }
                        } else {
                            let d0 = dr, d1 = dr + n
                            for tx in 0..<fullTiles {
                                let s = row + tx &* 2
                                d0[tx] = s[0]; d1[tx] = s[1]
                            }
                        }
                        for tx in fullTiles..<n {
                            for s in 0..<m {
                                let ox = tx * m + s
                                dr[s * n + tx] = tx < tilesX && ox < outW ? row[ox] : 0
                            }
                        }
                    }
                    // Columns: e[k][s] = sum_r A[k][r] d[r][s].
                    for s in 0..<m {
                        WinogradTransforms.outputAdjoint(tile, d + s * n, srcStride: m * n, e + s * n, dstStride: m * n, count: n)
                    }
                    // Rows: W[k*a + l] = sum_s A[l][s] e[k][s].
                    let target = w + co * p.ld + (ty - tileRows.lowerBound) * tilesX
                    for k in 0..<a {
                        WinogradTransforms.outputAdjoint(tile, e + k * m * n, srcStride: n, target + k * a * pointStride,
                                                         dstStride: pointStride, count: n)
                    }
                }
            }
        }
    }
}

extension WinogradTransforms {
    /// The adjoint of `output`: `w = A d` on `m` vectors in, `alpha` vectors out (strides and
    /// `count` as in `input`).
    static func outputAdjoint(_ tile: WinogradTile, _ src: UnsafePointer<Float>, srcStride s: Int,
                              _ dst: UnsafeMutablePointer<Float>, dstStride t: Int, count: Int) {
        switch tile {
        case .f2:
            var v = 0
            while v < count {
                let d0 = load(src + v), d1 = load(src + s + v)
                // A rows (A^T's columns): [1 0], [1 1], [1 -1], [0 -1].
                store(d0, dst + v)
                store(d0 + d1, dst + t + v)
                store(d0 - d1, dst + 2 * t + v)
                store(-d1, dst + 3 * t + v)
                v &+= 8
            }
        case .f4:
            var v = 0
            while v < count {
                let d0 = load(src + v), d1 = load(src + s + v), d2 = load(src + 2 * s + v), d3 = load(src + 3 * s + v)
                // A rows: [1 0 0 0], [1 1 1 1], [1 -1 1 -1], [1 2 4 8], [1 -2 4 -8], [0 0 0 1].
                let even = d0 + d2, odd = d1 + d3
                let even4 = d0 + 4 * d2, odd8 = 2 * d1 + 8 * d3
                store(d0, dst + v)
                store(even + odd, dst + t + v)
                store(even - odd, dst + 2 * t + v)
                store(even4 + odd8, dst + 3 * t + v)
                store(even4 - odd8, dst + 4 * t + v)
                store(d3, dst + 5 * t + v)
                v &+= 8
            }
        }
    }

    /// The adjoint of `filters`: `dw_f = G^T dU_f G` (3x3) for filters `filters` (index
    /// `co * Cin + ci`), from `dU[p][f]` (`pointStride` floats apart per transform point), written
    /// to `dw[f * 9 ...]` as `[Cout, Cin, 3, 3]`. Runs over chunks of filters with the two matrix
    /// products as SIMD passes, then scatters each chunk to its 9 taps.
    static func filterGradients(_ tile: WinogradTile, _ du: UnsafePointer<Float>, pointStride: Int, filters: Range<Int>,
                                into dw: UnsafeMutablePointer<Float>) {
        let a = tile.alpha, gm = tile.filterMatrix.map { Float($0) }
        let chunk = 256
        withUnsafeTemporaryAllocation(of: Float.self, capacity: (3 * a + 9) * chunk) { scratch in
            let temp = scratch.baseAddress!, taps = temp + 3 * a * chunk
            var f0 = filters.lowerBound
            while f0 < filters.upperBound {
                let count = Swift.min(chunk, filters.upperBound - f0)
                // temp[i][l] = sum_j dU[i*a + j] G[j][l]  (alpha x 3)
                for i in 0..<a {
                    for l in 0..<3 {
                        let dst = temp + (i * 3 + l) * chunk
                        var v = 0
                        while v + 8 <= count {
                            var acc = Vector(repeating: 0)
                            for j in 0..<a where gm[j * 3 + l] != 0 {
                                acc += gm[j * 3 + l] * load(du + (i * a + j) * pointStride + f0 + v)
                            }
                            store(acc, dst + v)
                            v &+= 8
                        }
                        while v < count {
                            var acc: Float = 0
                            for j in 0..<a { acc += gm[j * 3 + l] * du[(i * a + j) * pointStride + f0 + v] }
                            dst[v] = acc
                            v &+= 1
                        }
                    }
                }
                // taps[k*3 + l] = sum_i G[i][k] temp[i][l]
                for k in 0..<3 {
                    for l in 0..<3 {
                        let dst = taps + (k * 3 + l) * chunk
                        dst.update(repeating: 0, count: count)
                        for i in 0..<a where gm[i * 3 + k] != 0 {
                            let c = gm[i * 3 + k], src = temp + (i * 3 + l) * chunk
                            for v in 0..<count { dst[v] += c * src[v] }
                        }
                    }
                }
                for f in 0..<count {
                    let out = dw + (f0 + f) * 9
                    for k in 0..<9 { out[k] = taps[k * chunk + f] }
                }
                f0 += count
            }
        }
    }
}
