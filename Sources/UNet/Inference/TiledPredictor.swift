import Tensor

/// How a fully convolutional network maps an input tile to its output, for tiling.
public struct TileGeometry: Sendable, Equatable {
    /// The network's pooling grid (2^depth for a U-Net): tiles are placed at multiples of it.
    public var alignment: Int
    /// Output pixels this close to a tile's edge are discarded: they saw zero padding instead of
    /// image context. 0 for valid-padded networks (they see no padding at all). Make it a multiple
    /// of `alignment` so tiles stay on the network's pooling grid.
    public var contextMargin: Int
    /// Output side for an input side, or nil when the network cannot take that size.
    public var outputSize: @Sendable (Int) -> Int?

    /// Creates a geometry.
    public init(alignment: Int, contextMargin: Int, outputSize: @escaping @Sendable (Int) -> Int?) {
        self.alignment = alignment
        self.contextMargin = contextMargin
        self.outputSize = outputSize
    }

    /// Equal alignment and context margin (the output-size function is not compared).
    public static func == (a: TileGeometry, b: TileGeometry) -> Bool {
        a.alignment == b.alignment && a.contextMargin == b.contextMargin
    }

    /// The smallest valid input side >= `side`, with its output side.
    func inputSize(atLeast side: Int) -> (input: Int, output: Int)? {
        var s = max(1, side)
        for _ in 0..<65536 {
            if let o = outputSize(s), o >= 2 * contextMargin + alignment { return (s, o) }
            s += 1
        }
        return nil
    }
}

/// Probability maps for images of any size by overlap-tile: the image is mirrored at its borders,
/// cut into overlapping input tiles, and only each tile's trustworthy centre is kept, so tiled and
/// whole-image predictions agree (the U-Net paper's strategy).
public struct TiledPredictor {
    /// Maps a batch `[B, channels, T, T]` to logits `[B, classes, T', T']`.
    public var forward: (Tensor) -> Tensor
    /// The network's tiling geometry.
    public var geometry: TileGeometry
    /// Requested input tile side (rounded up to what the network accepts).
    public var tileSize: Int
    /// Tiles per forward call.
    public var batchSize: Int

    /// Creates a predictor.
    public init(geometry: TileGeometry, tileSize: Int, batchSize: Int = 1, forward: @escaping (Tensor) -> Tensor) {
        self.forward = forward
        self.geometry = geometry
        self.tileSize = tileSize
        self.batchSize = max(1, batchSize)
    }

    /// Class probabilities `[classes, height, width]` for one image of `channels` planes (`pixels`
    /// channel-major, each plane row-major; 2N+1 planes for a network with 2.5D context).
    /// With `testTimeAugmentation` the prediction is averaged over the 8 flips/90-degree rotations;
    /// with `aligned` as well, each of the 7 transformed predictions is first shifted onto the plain
    /// one (`SubpixelAlignment`, estimated on the last class's map), for models trained without flips.
    public func probabilities(pixels: [Float], channels: Int = 1, height: Int, width: Int,
                              testTimeAugmentation: Bool = false, aligned: Bool = false) -> Tensor {
        precondition(channels >= 1 && pixels.count == channels * height * width,
                     "TiledPredictor: \(pixels.count) values for \(channels) plane(s) of \(height)x\(width)")
        if !testTimeAugmentation { return predictOnce(pixels, channels, height, width) }
        var sum: Tensor? = nil, plain: Tensor? = nil
        let n = height * width
        for t in DihedralTransform.all {
            var moved: [Float] = []
            var (h, w) = (height, width)
            moved.reserveCapacity(pixels.count)
            for c in 0..<channels {
                let plane = channels == 1 ? pixels : Array(pixels[(c * n)..<((c + 1) * n)])
                let transformed = t.apply(plane, height, width)
                moved += transformed.0
                (h, w) = (transformed.1, transformed.2)
            }
            let p = predictOnce(moved, channels, h, w)
            var back = t.invert(p, height: height, width: width)
            if aligned, let plain { back = Self.align(back, onto: plain, height: height, width: width) }
            if plain == nil { plain = back }  // `all` starts with the identity
            if sum == nil { sum = back } else { sum!.addInPlace(back) }
        }
        return sum! * (1 / Float(DihedralTransform.all.count))
    }

    /// `p` (`[classes, H, W]`) shifted as a whole onto `reference` (the plain prediction), by the
    /// shift that registers their last class maps.
    static func align(_ p: Tensor, onto reference: Tensor, height: Int, width: Int) -> Tensor {
        let classes = p.shape[0], n = height * width
        let last = (classes - 1) * n
        let values = p.scalars, target = Array(reference.scalars[last..<(last + n)])
        let (dy, dx) = SubpixelAlignment.estimateShift(of: Array(values[last..<(last + n)]), onto: target,
                                                       height: height, width: width)
        if dy == 0 && dx == 0 { return p }
        var moved = [Float]()
        moved.reserveCapacity(values.count)
        for c in 0..<classes {
            moved += SubpixelAlignment.shifted(Array(values[(c * n)..<((c + 1) * n)]), height: height, width: width, dy: dy, dx: dx)
        }
        return Tensor(shape: [classes, height, width], scalars: moved)
    }

    func predictOnce(_ pixels: [Float], _ channels: Int, _ height: Int, _ width: Int) -> Tensor {
        // Input tile side, and where its kept output core sits relative to the tile's input.
        guard let (tileIn, tileOut) = geometry.inputSize(atLeast: max(tileSize, 2 * geometry.contextMargin + geometry.alignment)) else {
            preconditionFailure("TiledPredictor: no valid input tile size near \(tileSize)")
        }
        let k = geometry.contextMargin
        // Tile origins step by `core`; keeping it a multiple of the alignment keeps every tile on
        // the same pooling grid as the whole image, so a tile computes what the whole would.
        let core = max(geometry.alignment, (tileOut - 2 * k) / geometry.alignment * geometry.alignment)
        let offset = (tileIn - tileOut) / 2 + k  // input pixels before the first kept output pixel
        let rowsOfTiles = (height + core - 1) / core, colsOfTiles = (width + core - 1) / core
        var result: Tensor? = nil
        var classes = 0
        var tiles: [(Int, Int)] = []
        for ty in 0..<rowsOfTiles { for tx in 0..<colsOfTiles { tiles.append((ty * core, tx * core)) } }
        var start = 0
        while start < tiles.count {
            let batch = Array(tiles[start..<min(tiles.count, start + batchSize)])
            start += batch.count
            var input = Tensor(uninitializedShape: [batch.count, channels, tileIn, tileIn])
            input.withUnsafeMutableBufferPointer { buf in
                for (b, (y0, x0)) in batch.enumerated() {
                    for plane in 0..<channels {
                        let dst = buf.baseAddress! + (b * channels + plane) * tileIn * tileIn
                        let src = plane * height * width
                        for r in 0..<tileIn {
                            let sy = mirrorIndex(y0 - offset + r, height)
                            let row = dst + r * tileIn
                            for c in 0..<tileIn { row[c] = pixels[src + sy * width + mirrorIndex(x0 - offset + c, width)] }
                        }
                    }
                }
            }
            let logits = withoutGradients { forward(input) }
            precondition(logits.rank == 4 && logits.shape[0] == batch.count && logits.shape[2] == tileOut && logits.shape[3] == tileOut,
                         "TiledPredictor: forward returned \(logits.shape) for input \(input.shape); expected [\(batch.count), C, \(tileOut), \(tileOut)]")
            let probs = logits.softmax(alongAxis: 1)
            if result == nil {
                classes = probs.shape[1]
                result = Tensor.zeros([classes, height, width])
            }
            let src = probs.scalars
            result!.withUnsafeMutableBufferPointer { out in
                for (b, (y0, x0)) in batch.enumerated() {
                    for ch in 0..<classes {
                        let plane = b * classes * tileOut * tileOut + ch * tileOut * tileOut
                        for r in 0..<min(core, height - y0) {
                            let srcRow = plane + (k + r) * tileOut + k
                            let dstRow = ch * height * width + (y0 + r) * width + x0
                            for c in 0..<min(core, width - x0) { out[dstRow + c] = src[srcRow + c] }
                        }
                    }
                }
            }
        }
        return result!
    }
}

/// Reflects an index into `0..<n` without repeating the edge (... 2 1 | 0 1 2 ... n-1 | n-2 ...),
/// periodically, so any offset works even when the pad exceeds the image.
@inline(__always) func mirrorIndex(_ i: Int, _ n: Int) -> Int {
    if n == 1 { return 0 }
    let period = 2 * (n - 1)
    var m = i % period
    if m < 0 { m += period }
    return m < n ? m : period - m
}

/// The 8 symmetries of the square (flips and 90-degree rotations), for test-time augmentation.
struct DihedralTransform {
    let rotations: Int  // quarter turns, 0..<4
    let flip: Bool      // horizontal flip applied before rotating

    static let all: [DihedralTransform] = (0..<4).flatMap { r in [false, true].map { DihedralTransform(rotations: r, flip: $0) } }

    /// Source coordinate in the original image for destination (y, x) in the transformed one.
    func source(_ y: Int, _ x: Int, _ h: Int, _ w: Int) -> (Int, Int) {
        // Transformed size: (h, w) for even rotations, (w, h) for odd.
        var (sy, sx) = (y, x)
        var (ch, cw) = rotations % 2 == 0 ? (h, w) : (w, h)  // current (transformed) size
        for _ in 0..<rotations {
            // undo one counter-clockwise quarter turn: (y, x) in rotated <- (x, cw_prev - 1 - y)
            (sy, sx) = (sx, ch - 1 - sy)
            (ch, cw) = (cw, ch)
        }
        if flip { sx = w - 1 - sx }
        return (sy, sx)
    }

    func apply(_ pixels: [Float], _ h: Int, _ w: Int) -> ([Float], Int, Int) {
        let (th, tw) = rotations % 2 == 0 ? (h, w) : (w, h)
        var out = [Float](repeating: 0, count: h * w)
        for y in 0..<th { for x in 0..<tw {
            let (sy, sx) = source(y, x, h, w)
            out[y * tw + x] = pixels[sy * w + sx]
        } }
        return (out, th, tw)
    }

    /// Maps a `[C, th, tw]` prediction on the transformed image back to `[C, height, width]`.
    func invert(_ p: Tensor, height: Int, width: Int) -> Tensor {
        let c = p.shape[0], th = p.shape[1], tw = p.shape[2]
        var out = Tensor(uninitializedShape: [c, height, width])
        let src = p.scalars
        out.withUnsafeMutableBufferPointer { dst in
            for y in 0..<th { for x in 0..<tw {
                let (sy, sx) = source(y, x, height, width)
                for ch in 0..<c { dst[ch * height * width + sy * width + sx] = src[ch * th * tw + y * tw + x] }
            } }
        }
        return out
    }
}
