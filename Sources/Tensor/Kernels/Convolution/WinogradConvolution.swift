/// Stride-1, dilation-1 3x3 convolutions by Winograd's minimal filtering F(m x m, 3x3)
/// (`WinogradTile`; Lavin & Gray 2016), for any zero padding of up to 2 pixels per side ("same"
/// and "valid", and the "full" padding of a valid convolution's backward-data).
///
/// The output is cut into `m x m` tiles, `tilesX` per row of tiles. Per block of whole tile rows of
/// one image (`T` tiles):
/// 1. input transform: `V[p][ci][t] = (B^T d_{ci,t} B)[p]` for each transform point `p`, channel and
///    tile, written tile-minor so that `V[p]` is a `[Cin, T]` GEMM operand;
/// 2. `alpha^2` GEMMs `M[p][Cout, T] = U[p][Cout, Cin] . V[p][Cin, T]`, with `U` the filters
///    transformed once per call (`WinogradTransforms.filters`; not cached across calls, since in
///    training the weights change every step; caching would help inference of wide layers);
/// 3. output transform: `y_{co,t} = A^T M[.][co][t] A` (plus the bias) scattered into the output.
/// Tiles that reach past the input read zeros; output pixels past the output's edge are dropped.
///
/// Threads as in `ConvolutionKernels.Schedule`: with at least as many blocks as threads, each
/// thread runs a contiguous run of blocks with its own scratch and single-threaded GEMMs;
/// otherwise blocks run one after another with the transforms split over channels and the GEMMs
/// over transform points. Every output element is written by one thread in a fixed order.
///
/// Scratch: the transformed filters (`alpha^2 * Cout * Cin` floats) and, per lane, `V` and `M`
/// (`alpha^2 * (Cin + Cout)` floats per tile); blocks are sized so that all of it fits
/// `ConvolutionWorkspace.limitBytes` (`plan` returns nil when one tile row does not fit, and the
/// caller takes the exact paths).
enum WinogradConvolution {
    /// Whether the algorithm can compute `g` at all: a 3x3 kernel, stride 1, dilation 1, and
    /// padding of at most 2 per side (beyond, whole tiles would read only padding).
    static func eligible(_ g: ConvGeometry) -> Bool {
        g.kernelHeight == 3 && g.kernelWidth == 3 && g.stride == 1 && g.dilation == 1
            && Swift.max(g.padTop, g.padBottom, g.padLeft, g.padRight) <= 2
    }

    /// The tiling and schedule of one call.
    struct Plan {
        var g: ConvGeometry
        var tile: WinogradTile
        var tilesX: Int, tilesY: Int
        /// Tile rows per block, blocks per image, and the lanes that run the (image, block) items.
        var rows: Int, blocksPerImage: Int, lanes: Int
        /// True when items run one after another with the work of each split over all threads.
        var splitsOverThreads: Bool
        /// Row stride of the `[C, T]` matrices of a block (`paddedStride` of its tile count).
        var ld: Int

        var items: Int { g.batch * blocksPerImage }
        /// Tiles per row rounded up to the transforms' vector width.
        var vectorLength: Int { (tilesX + 7) / 8 * 8 }
        /// Floats of the transformed filters.
        var filterFloats: Int { tile.points * g.outChannels * g.inChannels }
        /// Floats of one lane's `V` and `M`.
        var laneFloats: Int { tile.points * (g.inChannels + g.outChannels) * ld }

        /// Image and tile rows of item `item`.
        func block(_ item: Int) -> (image: Int, rows: Range<Int>) {
            let image = item / blocksPerImage, b = item - image * blocksPerImage
            return (image, (b * rows)..<Swift.min(tilesY, (b + 1) * rows))
        }
    }

    /// Blocks of whole tile rows whose `V` and `M` take about `ConvolutionWorkspace.preferredBlockBytes`
    /// (at least one tile row), cut so that lanes get equal work; nil when the filters and one tile
    /// row per lane do not fit the workspace limit.
    /// With `filtersPerLane` (the weight gradient), every lane also holds its own
    /// `filterFloats` (its partial sum of the transformed filter gradient).
    static func plan(_ g: ConvGeometry, tile: WinogradTile, parallelism: ConvolutionPolicy.Parallelism,
                     filtersPerLane: Bool = false) -> Plan? {
        let m = tile.m, threads = Threads.count
        let tilesX = (g.outWidth + m - 1) / m, tilesY = (g.outHeight + m - 1) / m
        let perTile = tile.points * (g.inChannels + g.outChannels)
        let filters = tile.points * g.outChannels * g.inChannels
        func floats(_ rows: Int) -> Int { perTile * ConvolutionKernels.paddedStride(rows * tilesX) }
        let preferred = ConvolutionWorkspace.preferredBlockBytes / MemoryLayout<Float>.stride
        func layout(lanes: Int) -> (rows: Int, blocks: Int)? {
            let available = ConvolutionWorkspace.limitFloats - filters * (filtersPerLane ? lanes : 1)
            guard floats(1) * lanes <= available else { return nil }
            var rows = Swift.max(1, Swift.min(tilesY, preferred / Swift.max(1, perTile * tilesX)))
            while rows > 1 && floats(rows) * lanes > available { rows -= 1 }
            var blocks = (tilesY + rows - 1) / rows
            // Equal work per lane when there are few blocks.
            if lanes > 1 && (g.batch * blocks) % lanes != 0 && g.batch * blocks < 8 * lanes {
                blocks = Swift.min(tilesY, (blocks + lanes - 1) / lanes * lanes)
                rows = (tilesY + blocks - 1) / blocks
                blocks = (tilesY + rows - 1) / rows
            }
            return (rows, blocks)
        }
        func make(_ l: (rows: Int, blocks: Int), lanes: Int, split: Bool) -> Plan {
            Plan(g: g, tile: tile, tilesX: tilesX, tilesY: tilesY, rows: l.rows, blocksPerImage: l.blocks, lanes: lanes,
                 splitsOverThreads: split, ld: ConvolutionKernels.paddedStride(l.rows * tilesX))
        }
        if threads > 1 && parallelism != .splitGemm, let l = layout(lanes: threads) {
            let items = g.batch * l.blocks
            if parallelism == .lanes || items >= threads {
                return make(l, lanes: Swift.max(1, Swift.min(threads, items)), split: false)
            }
        }
        guard let l = layout(lanes: 1) else { return nil }
        return make(l, lanes: 1, split: true)
    }

    /// `output = conv(input, weight) + bias` (see `ConvolutionKernels.forward`); false when the
    /// workspace limit is too small for the filters and one tile row (the caller then takes the
    /// exact paths). `g` must be `eligible`.
    static func forward(_ g: ConvGeometry, tile: WinogradTile, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                        parallelism: ConvolutionPolicy.Parallelism) -> Bool {
        precondition(eligible(g), "WinogradConvolution.forward: not a stride-1 3x3 convolution: \(g)")
        guard let p = plan(g, tile: tile, parallelism: parallelism) else { return false }
        let cin = g.inChannels, cout = g.outChannels, points = tile.points
        let inImage = cin * g.inPixels, outImage = cout * g.outPixels
        ConvolutionWorkspace.withBuffer(floats: p.filterFloats + p.lanes * p.laneFloats) { ws in
            forRanges(cout * cin, split: cout * cin >= 4096) { filters in
                WinogradTransforms.filters(tile, weight, filters: filters, pointStride: cout * cin, into: ws)
            }
            let u = UnsafePointer(ws)
            // `run` reads only the lanes and items of a schedule.
            ConvolutionKernels.run(ConvolutionKernels.Schedule(
                block: 0, blocksPerImage: p.blocksPerImage, items: p.items, lanes: p.lanes,
                splitsOverThreads: p.splitsOverThreads, laneFloats: p.laneFloats)) { item, lane in
                let (image, rows) = p.block(item)
                let tiles = rows.count * p.tilesX
                let v = ws + p.filterFloats + lane * p.laneFloats
                let mBuffer = v + points * cin * p.ld
                let x = input + image * inImage
                forRanges(cin, split: p.splitsOverThreads) { channels in
                    transformInput(p, image: x, tileRows: rows, channels: channels, into: v)
                }
                forRanges(points, split: p.splitsOverThreads) { range in
                    for point in range {
                        Gemm.sgemm(m: cout, n: tiles, k: cin, a: u + point * cout * cin, lda: cin,
                                   b: v + point * cin * p.ld, ldb: p.ld, c: mBuffer + point * cout * p.ld, ldc: p.ld)
                    }
                }
                let y = output + image * outImage
                forRanges(cout, split: p.splitsOverThreads) { outputs in
                    transformOutput(p, mBuffer, tileRows: rows, outputs: outputs, bias: bias, into: y)
                }
            }
        }
        return true
    }

    /// `body` over `0..<count`, whole, or cut into up to `4 * Threads.count` ranges run in parallel
    /// when `split`.
    static func forRanges(_ count: Int, split: Bool, _ body: (Range<Int>) -> Void) {
        let threads = Threads.count
        if !split || threads == 1 || count < 2 {
            body(0..<count)
            return
        }
        let chunks = Swift.min(count, 4 * threads)
        Threads.parallelFor(chunks) { c in
            let lo = c * count / chunks, hi = (c + 1) * count / chunks
            if lo < hi { body(lo..<hi) }
        }
    }

    // MARK: Input

    /// `V[point][ci][t]` for channels `channels` and the tiles of `tileRows` of image `x`
    /// (`t` counts tiles from the block's first), with point stride `Cin * ld`. Rows of tiles are
    /// done in order: each writes up to 7 lanes past its end, which the next row (or the stride's
    /// padding) overwrites.
    static func transformInput(_ p: Plan, image x: UnsafePointer<Float>, tileRows: Range<Int>, channels: Range<Int>,
                               into v: UnsafeMutablePointer<Float>) {
        let tile = p.tile, a = tile.alpha, n = p.vectorLength
        let pointStride = p.g.inChannels * p.ld
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * a * a * n) { scratch in
            let d = scratch.baseAddress!, e = d + a * a * n
            for c in channels {
                let plane = x + c * p.g.inPixels
                for ty in tileRows {
                    gather(p, plane: plane, tileRow: ty, into: d)
                    // Columns: e[i][l] = sum_k B^T[i][k] d[k][l].
                    for l in 0..<a {
                        WinogradTransforms.input(tile, d + l * n, srcStride: a * n, e + l * n, dstStride: a * n, count: n)
                    }
                    // Rows: V[i*a + j] = sum_l B^T[j][l] e[i][l].
                    let target = v + c * p.ld + (ty - tileRows.lowerBound) * p.tilesX
                    for i in 0..<a {
                        WinogradTransforms.input(tile, e + i * a * n, srcStride: n, target + i * a * pointStride,
                                                 dstStride: pointStride, count: n)
                    }
                }
            }
        }
    }

    /// `d[k][l][tx]` = the input under pixel `(k, l)` of tile `tx` of tile row `ty` (0 in the
    /// padding and for the lanes past the last tile): `alpha^2` vectors of `vectorLength` floats.
    static func gather(_ p: Plan, plane: UnsafePointer<Float>, tileRow ty: Int, into d: UnsafeMutablePointer<Float>) {
        let g = p.g, m = p.tile.m, a = p.tile.alpha, n = p.vectorLength, tilesX = p.tilesX
        let w = g.width, left = g.padLeft
        // Tiles whose columns tx*m - left ..< tx*m - left + a all lie inside the row.
        let lo = Swift.min(tilesX, (left + m - 1) / m)
        let hi = w - a + left < 0 ? lo : Swift.max(lo, Swift.min(tilesX, (w - a + left) / m + 1))
        for k in 0..<a {
            let iy = ty * m + k - g.padTop
            let dk = d + k * a * n
            if iy < 0 || iy >= g.height {
                dk.update(repeating: 0, count: a * n)
                continue
            }
            let row = plane + iy * w
            func edge(_ tx: Int) {
                for l in 0..<a {
                    let ix = tx * m - left + l
                    dk[l * n + tx] = ix >= 0 && ix < w ? row[ix] : 0
                }
            }
            for tx in 0..<lo { edge(tx) }
            if a == 6 {
                let d0 = dk, d1 = dk + n, d2 = dk + 2 * n, d3 = dk + 3 * n, d4 = dk + 4 * n, d5 = dk + 5 * n
                for tx in lo..<hi {
                    let s = row + (tx &* 4 &- left)
                    d0[tx] = s[0]; d1[tx] = s[1]; d2[tx] = s[2]; d3[tx] = s[3]; d4[tx] = s[4]; d5[tx] = s[5]
                }
            } else {
                let d0 = dk, d1 = dk + n, d2 = dk + 2 * n, d3 = dk + 3 * n
                for tx in lo..<hi {
                    let s = row + (tx &* 2 &- left)
                    d0[tx] = s[0]; d1[tx] = s[1]; d2[tx] = s[2]; d3[tx] = s[3]
                }
            }
            for tx in hi..<tilesX { edge(tx) }
            if tilesX < n {
                for l in 0..<a { (dk + l * n + tilesX).update(repeating: 0, count: n - tilesX) }
            }
        }
    }

    // MARK: Output

    /// The output pixels of channels `outputs` under the tiles of `tileRows`, from
    /// `M[point][co][t]` (point stride `Cout * ld`), plus the bias, into image `y` `[Cout, outH, outW]`.
    static func transformOutput(_ p: Plan, _ mBuffer: UnsafePointer<Float>, tileRows: Range<Int>, outputs: Range<Int>,
                                bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) {
        let g = p.g, tile = p.tile, a = tile.alpha, m = tile.m, n = p.vectorLength, tilesX = p.tilesX
        let pointStride = g.outChannels * p.ld
        let outW = g.outWidth, outH = g.outHeight
        let fullTiles = outW / m
        withUnsafeTemporaryAllocation(of: Float.self, capacity: (m * a + m * m) * n) { scratch in
            let f = scratch.baseAddress!, t = f + m * a * n
            for co in outputs {
                let add = bias?[co] ?? 0
                let plane = y + co * g.outPixels
                for ty in tileRows {
                    let src = mBuffer + co * p.ld + (ty - tileRows.lowerBound) * tilesX
                    // Columns: f[r][j] = sum_k A^T[r][k] M[k*a + j].
                    for j in 0..<a {
                        WinogradTransforms.output(tile, src + j * pointStride, srcStride: a * pointStride, f + j * n,
                                                  dstStride: a * n, count: n)
                    }
                    // Rows: t[r][s] = sum_l A^T[s][l] f[r][l].
                    for r in 0..<m {
                        WinogradTransforms.output(tile, f + r * a * n, srcStride: n, t + r * m * n, dstStride: n, count: n)
                    }
                    for r in 0..<m {
                        let oy = ty * m + r
                        if oy >= outH { break }
                        let row = plane + oy * outW, tr = t + r * m * n
                        if m == 4 {
                            let s0 = tr, s1 = tr + n, s2 = tr + 2 * n, s3 = tr + 3 * n
                            for tx in 0..<fullTiles {
                                let o = row + tx &* 4
                                o[0] = s0[tx] + add; o[1] = s1[tx] + add; o[2] = s2[tx] + add; o[3] = s3[tx] + add
                            }
                        } else {
                            let s0 = tr, s1 = tr + n
                            for tx in 0..<fullTiles {
                                let o = row + tx &* 2
                                o[0] = s0[tx] + add; o[1] = s1[tx] + add
                            }
                        }
                        if fullTiles < tilesX {
                            for s in 0..<(outW - fullTiles * m) { row[fullTiles * m + s] = tr[s * n + fullTiles] + add }
                        }
                    }
                }
            }
        }
    }
}
